package ssohttp

import (
	"context"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// EchoWrap is ssoecho.Wrap, set by echo_test.go: every middleware case and
// benchmark also runs through echo, but ssoecho imports this package, so
// only the external test package may import it.
var EchoWrap func(mw func(http.Handler) http.Handler) echo.MiddlewareFunc

// newTestVerifier is a Verifier for ssotest's issuer and audience on clk,
// with session s_revoked revoked, as package sso's tests make it.
func newTestVerifier(t testing.TB, ks sso.KeySet, clk *ssotest.Clock, mod ...func(*sso.Config)) *sso.Verifier {
	t.Helper()
	cfg := sso.Config{Issuer: ssotest.Issuer, Audience: ssotest.Audience, Now: clk.Now, Revoked: ssotest.RevokedSet{"s_revoked": true}}
	for _, m := range mod {
		m(&cfg)
	}
	v, err := sso.NewVerifier(ks, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// benchSetup returns a verifier of k's tokens with the given cache size
// (-1: none) and a token it has verified once.
func benchSetup(b testing.TB, k *ssotest.Key, cacheSize int) (*sso.Verifier, string) {
	ks, err := sso.NewStaticKeySet(k.JWK())
	if err != nil {
		b.Fatal(err)
	}
	v := newTestVerifier(b, ks, ssotest.NewClock(), func(c *sso.Config) { c.CacheSize = cacheSize })
	tok := k.Mint(b, ssotest.ValidClaims())
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	return v, tok
}
