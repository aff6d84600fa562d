package ssohttp_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// Protect an admin area: members of the admins group only, signed in with a
// one-time code or a passkey within the last ten minutes. Non-members get a
// 403; members whose sign-in is weaker or older are sent to sign in again.
func ExampleAllOf() {
	rule := ssohttp.AllOf(
		ssohttp.RequireGroup("admins"),
		ssohttp.RequireAMR(wire.AMROTP, wire.AMRHardware),
		ssohttp.MaxAuthAge(10*time.Minute),
	)
	cfg := ssohttp.MiddlewareConfig{Authorize: rule}
	_ = cfg // ssohttp.Middleware(client, cfg), as in the example of Middleware
}

// A rule is a plain function of the request and the verified claims.
func ExampleRequireGroup() {
	rule := ssohttp.RequireGroup("ops")
	fmt.Println(rule(nil, &sso.Claims{Username: "alice", Groups: []string{"dev"}}))
	fmt.Println(rule(nil, &sso.Claims{Username: "bob", Groups: []string{"dev", "ops"}}))
	// Output:
	// sso: forbidden: You need to be in group ops.
	// <nil>
}

// A weaker sign-in is not refused outright: the user is asked to step up.
func ExampleRequireAMR() {
	rule := ssohttp.RequireAMR(wire.AMRHardware)
	err := rule(nil, &sso.Claims{Username: "alice", AMR: []string{"pwd"}})
	var su *ssohttp.StepUpError
	fmt.Println(errors.As(err, &su), su.AMR)
	// Output: true [hwk]
}
