package ssohttp

import "github.com/canopy-sso/canopy/pkg/sso"

// The errors only the HTTP layer returns, beside the verifier's (sso.ErrMissing…).
// sso.Reason gives their public reasons, as for the verifier's.
var (
	// ErrAmbiguous: a request carried two or more access cookies holding
	// different valid sessions. SPEC.md's reason list has no word for it, so
	// its public reason is "malformed": the request as a whole is.
	ErrAmbiguous error = sso.NewReasonError("sso: access cookies for different sessions", "malformed")
	// ErrForbidden: the token is valid but a rule refused it (status 403,
	// reason "forbidden"). Authorize functions may return it, wrapped or not.
	ErrForbidden error = sso.NewReasonError("sso: forbidden", "forbidden")
	// ErrStepUp: the token is valid but its sign-in is not strong or recent
	// enough for a rule (a *StepUpError matches it); reason "step_up".
	ErrStepUp error = sso.NewReasonError("sso: step-up authentication required", "step_up")
)

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
