package sso

import (
	"errors"
	"testing"
)

func TestReason(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrMissing, "missing"},
		{errorf(ErrMalformed, "x"), "malformed"},
		{errorf(ErrSignature, "x"), "signature"},
		{errorf(ErrUnknownKey, "x"), "signature"},
		{&ClaimsError{Err: errorf(ErrExpired, "x")}, "expired"},
		{&ClaimsError{Err: errorf(ErrClaims, "x")}, "claims"},
		{&ClaimsError{Err: errorf(ErrRevoked, "x")}, "revoked"},
		{ErrNoKeys, "unavailable"},
		{errors.New("other"), "malformed"},
	}
	for _, tc := range cases {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(errorf(ErrUnknownKey, "x"), ErrSignature) {
		t.Error("ErrUnknownKey does not match ErrSignature")
	}
}
