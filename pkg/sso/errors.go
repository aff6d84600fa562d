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

// The errors a Verifier or a Client return, one per failure. They are
// wrapped with detail (fmt.Errorf("%w: …")), so compare with errors.Is and
// turn them into the public reason with Reason. The HTTP layer adds its own
// (ssohttp.ErrAmbiguous, ErrForbidden, ErrStepUp), made with NewReasonError.
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
)

// Reason returns the public reason for err: one of "missing", "malformed",
// "signature", "expired", "claims", "revoked" (the words SPEC.md fixes for a
// 401), or "unavailable", or the reason of an error made with
// NewReasonError ("malformed" for ssohttp.ErrAmbiguous, "forbidden",
// "step_up"). It returns "" for nil and "malformed" for any other error.
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

// NewReasonError returns a sentinel error with text msg whose public reason
// (what Reason returns for it and for every error wrapping it) is reason.
// It lets the HTTP layer define its own failures without a second Reason.
func NewReasonError(msg, reason string) error {
	return &reasonError{msg: msg, reason: reason}
}

// errorf wraps a sentinel with detail for the log.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
