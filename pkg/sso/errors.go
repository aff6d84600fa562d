package sso

import (
	"errors"
	"fmt"
)

// reasonError is a sentinel that knows the public reason SPEC.md gives for it.
// A client sees only the reason; the wrapped detail is for logs.
type reasonError struct {
	msg    string
	reason string
	parent error // lets a finer sentinel (ErrUnknownKey) still match its family (ErrSignature)
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.parent }

// The errors a Verifier or the middleware return, one per failure. They are
// wrapped with detail (fmt.Errorf("%w: …")), so compare with errors.Is and
// turn them into the public reason with Reason.
var (
	// ErrMissing: no token was presented (reason "missing").
	ErrMissing error = &reasonError{msg: "sso: no access token", reason: "missing"}
	// ErrMalformed: the token is not a well-formed Canopy compact JWS (reason "malformed").
	ErrMalformed error = &reasonError{msg: "sso: malformed token", reason: "malformed"}
	// ErrSignature: the signature does not verify with a key from the key set,
	// or the algorithm is not allowed for that key (reason "signature").
	ErrSignature error = &reasonError{msg: "sso: invalid signature", reason: "signature"}
	// ErrUnknownKey: the token's kid names no key in the key set, even after a
	// refetch. It matches ErrSignature too (reason "signature"); the middleware
	// tells it apart only to explain a redirect loop.
	ErrUnknownKey error = &reasonError{msg: "sso: unknown signing key", reason: "signature", parent: ErrSignature}
	// ErrExpired: exp (plus the leeway) has passed (reason "expired"). It is
	// returned only after the signature verified, inside a *ClaimsError.
	ErrExpired error = &reasonError{msg: "sso: token expired", reason: "expired"}
	// ErrClaims: a claim or the typ header is wrong: iss, aud, typ, nbf or iat
	// in the future, exp-iat too long, a required claim missing, a claim of the
	// wrong JSON type (reason "claims").
	ErrClaims error = &reasonError{msg: "sso: invalid claims", reason: "claims"}
	// ErrRevoked: the token's session (sid) is in the revocation feed (reason "revoked").
	ErrRevoked error = &reasonError{msg: "sso: session revoked", reason: "revoked"}
	// ErrNoKeys: no key set has ever been loaded, so nothing can be verified;
	// the middleware answers 503 (reason "unavailable", never sent in a 401).
	ErrNoKeys error = &reasonError{msg: "sso: no signing keys loaded", reason: "unavailable"}
	// ErrAmbiguous: a request carried two or more access cookies holding
	// different valid sessions. SPEC.md's reason list has no word for it, so
	// its public reason is "malformed": the request as a whole is.
	ErrAmbiguous error = &reasonError{msg: "sso: access cookies for different sessions", reason: "malformed"}
	// ErrForbidden: the token is valid but a rule refused it (status 403,
	// reason "forbidden"). Authorize functions may return it, wrapped or not.
	ErrForbidden error = &reasonError{msg: "sso: forbidden", reason: "forbidden"}
	// ErrStepUp: the token is valid but its sign-in is not strong or recent
	// enough for a rule (a *StepUpError matches it); reason "step_up".
	ErrStepUp error = &reasonError{msg: "sso: step-up authentication required", reason: "step_up"}
)

// Reason returns the public reason for err: one of "missing", "malformed",
// "signature", "expired", "claims", "revoked" (the words SPEC.md fixes for a
// 401), or "unavailable", "forbidden" or "step_up". It returns "" for nil and
// "malformed" for an error that is not from this package.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return "malformed"
}

// ClaimsError is returned when a token's signature verified but its claims
// were refused (expired, revoked, wrong audience…). Err wraps the sentinel;
// Claims are the decoded claims, for diagnostics only (the middleware uses them
// to explain a redirect loop): never authorize anything with them.
type ClaimsError struct {
	Err    error
	Claims *Claims
}

// Error returns the wrapped error's text.
func (e *ClaimsError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error, so errors.Is(err, ErrExpired) works.
func (e *ClaimsError) Unwrap() error { return e.Err }

// ForbiddenError is an Authorize result whose Message is safe to show the user
// on the 403 page ("this page belongs to alice"). Any other Authorize error
// gets a generic page; API clients always get {"error":"forbidden"}.
type ForbiddenError struct {
	Message string
}

// Error returns the public message.
func (e *ForbiddenError) Error() string { return "sso: forbidden: " + e.Message }

// Unwrap makes a *ForbiddenError match ErrForbidden.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// errorf wraps a sentinel with detail for the log.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
