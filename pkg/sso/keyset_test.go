package sso

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func TestStaticKeySetRejectsBadKeys(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed")
	es := ssotest.NewESKey(t, "es")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	cases := []struct {
		name string
		key  jose.JSONWebKey
	}{
		{"private part", jose.JSONWebKey{Key: ed.Priv, KeyID: "a", Algorithm: wire.AlgEdDSA, Use: "sig"}},
		{"no use", jose.JSONWebKey{Key: ed.Priv.Public(), KeyID: "a", Algorithm: wire.AlgEdDSA}},
		{"use enc", jose.JSONWebKey{Key: ed.Priv.Public(), KeyID: "a", Algorithm: wire.AlgEdDSA, Use: "enc"}},
		{"no alg", jose.JSONWebKey{Key: ed.Priv.Public(), KeyID: "a", Use: "sig"}},
		{"alg RS256", jose.JSONWebKey{Key: ed.Priv.Public(), KeyID: "a", Algorithm: "RS256", Use: "sig"}},
		{"EdDSA alg on EC key", jose.JSONWebKey{Key: es.Priv.Public(), KeyID: "a", Algorithm: wire.AlgEdDSA, Use: "sig"}},
		{"ES256 alg on Ed25519 key", jose.JSONWebKey{Key: ed.Priv.Public(), KeyID: "a", Algorithm: wire.AlgES256, Use: "sig"}},
		{"ES256 alg on P-384 key", jose.JSONWebKey{Key: p384.Public(), KeyID: "a", Algorithm: wire.AlgES256, Use: "sig"}},
		{"no kid", jose.JSONWebKey{Key: ed.Priv.Public(), Algorithm: wire.AlgEdDSA, Use: "sig"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewStaticKeySet(tc.key); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := NewStaticKeySet(ed.JWK(), jose.JSONWebKey{Key: es.Priv.Public(), KeyID: "ed", Algorithm: wire.AlgES256, Use: "sig"}); err == nil {
		t.Fatal("two keys with one kid accepted")
	}
}
