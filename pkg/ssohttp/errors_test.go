package ssohttp

import (
	"testing"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// TestReason: the HTTP layer's errors keep their public reasons.
func TestReason(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{ErrAmbiguous, "malformed"},
		{&ForbiddenError{Message: "no"}, "forbidden"},
	}
	for _, tc := range cases {
		if got := sso.Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
