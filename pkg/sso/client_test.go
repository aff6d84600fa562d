package sso

import (
	"context"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

func TestNewValidates(t *testing.T) {
	for _, issuer := range []string{"", "domain.localhost", "ftp://x", "/relative", "http://user:pw@x"} {
		if _, err := New(context.Background(), Options{Issuer: issuer}); err == nil {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
}

func TestDiscover(t *testing.T) {
	k := ssotest.NewEdKey(t, "k1")
	issuer := ssotest.NewFakeIssuer(t, nil, k)
	issuer.Start()
	d, err := Discover(context.Background(), issuer.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.JWKSURI != issuer.URL+"/.well-known/jwks.json" || d.CookieName != "canopy" || d.RefreshURI != issuer.URL+"/refresh" {
		t.Fatalf("%+v", d)
	}
	// Another issuer's document is refused.
	if _, err := Discover(context.Background(), issuer.URL+"/", nil); err == nil || !strings.Contains(err.Error(), "issuer is") {
		t.Fatalf("mismatched issuer: %v", err)
	}
	issuer.SetDown(true)
	if _, err := Discover(context.Background(), issuer.URL, nil); err == nil {
		t.Fatal("down issuer discovered")
	}
}
