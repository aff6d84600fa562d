package ssohttp

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Rule decides whether an authenticated request may proceed: nil admits it,
// a *ForbiddenError (or any error) refuses it with 403, a *StepUpError asks
// the user to sign in again. MiddlewareConfig.Authorize takes one; the
// helpers below build the common ones and AllOf combines them.
type Rule = func(r *http.Request, c *sso.Claims) error

// RequireGroup admits members of at least one of groups (the token's
// "groups" claim). Anyone else gets a 403 naming the group: signing in again
// would not help.
func RequireGroup(groups ...string) Rule {
	groups = slices.Clone(groups)
	msg := "You need to be in group " + strings.Join(groups, " or ") + "."
	return func(_ *http.Request, c *sso.Claims) error {
		for _, g := range groups {
			if slices.Contains(c.Groups, g) {
				return nil
			}
		}
		return &ForbiddenError{Message: msg}
	}
}

// RequireAMR admits sessions signed in with at least one of methods (the
// token's "amr" claim: wire.AMROTP, wire.AMRHardware…). Other sessions are asked to
// step up: a browser is sent to sign in again (prompt=login), an API client
// gets 401 insufficient_user_authentication (RFC 9470).
func RequireAMR(methods ...string) Rule {
	methods = slices.Clone(methods)
	return func(_ *http.Request, c *sso.Claims) error {
		for _, m := range methods {
			if slices.Contains(c.AMR, m) {
				return nil
			}
		}
		return &StepUpError{AMR: methods}
	}
}

// MaxAuthAge admits sessions whose sign-in (the token's auth_time) is at
// most d old; older ones, and tokens without auth_time, are asked to step up
// as RequireAMR's are.
func MaxAuthAge(d time.Duration) Rule { return maxAuthAge(d, time.Now) }

func maxAuthAge(d time.Duration, now func() time.Time) Rule {
	return func(_ *http.Request, c *sso.Claims) error {
		if c.AuthTime > 0 && now().Sub(time.Unix(c.AuthTime, 0)) <= d {
			return nil
		}
		return &StepUpError{MaxAge: d}
	}
}

// AllOf admits a request only when every rule does. A refusal that is not a
// step-up wins (stepping up would not help); otherwise the step-ups are
// merged into one, so the user signs in again once.
func AllOf(rules ...Rule) Rule {
	rules = slices.Clone(rules)
	return func(r *http.Request, c *sso.Claims) error {
		var merged *StepUpError
		for _, rule := range rules {
			err := rule(r, c)
			if err == nil {
				continue
			}
			var su *StepUpError
			if !errors.As(err, &su) {
				return err
			}
			if merged == nil {
				merged = &StepUpError{}
			}
			merged.merge(su)
		}
		if merged != nil {
			return merged
		}
		return nil
	}
}

// StepUpError is a Rule's answer when the user is known and may be allowed,
// but not with this sign-in: it lacks a method, or is too old. The
// middleware sends a browser to {login_uri}?prompt=login&return_to=<URL>
// and answers an API request with 401 and error
// "insufficient_user_authentication" (RFC 9470).
type StepUpError struct {
	// AMR lists methods any one of which would do; empty when only the age
	// of the sign-in matters.
	AMR []string
	// MaxAge is the oldest sign-in allowed; 0 when age does not matter.
	MaxAge time.Duration
}

// Error describes what is missing.
func (e *StepUpError) Error() string {
	var parts []string
	if len(e.AMR) > 0 {
		parts = append(parts, "a sign-in with "+strings.Join(e.AMR, " or "))
	}
	if e.MaxAge > 0 {
		parts = append(parts, fmt.Sprintf("a sign-in within %v", e.MaxAge))
	}
	return "sso: step-up required: " + strings.Join(parts, " and ")
}

// Unwrap makes a *StepUpError match ErrStepUp.
func (e *StepUpError) Unwrap() error { return ErrStepUp }

func (e *StepUpError) merge(o *StepUpError) {
	for _, m := range o.AMR {
		if !slices.Contains(e.AMR, m) {
			e.AMR = append(e.AMR, m)
		}
	}
	if o.MaxAge > 0 && (e.MaxAge == 0 || o.MaxAge < e.MaxAge) {
		e.MaxAge = o.MaxAge
	}
}

// describeMethods names methods for a person: "a one-time code or a passkey".
func describeMethods(methods []string) string {
	var names []string
	for _, m := range methods {
		switch m {
		case wire.AMROTP:
			names = append(names, "a one-time code")
		case wire.AMRHardware:
			names = append(names, "a passkey")
		case wire.AMRPassword:
			names = append(names, "a password")
		default:
			names = append(names, fmt.Sprintf("%q", m))
		}
	}
	return strings.Join(names, " or ")
}
