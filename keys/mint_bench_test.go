package keys

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// BenchmarkMint is what the issuer spends on each access token it issues (at
// login and at every refresh): a fresh jti, the claims marshalled from
// sso.Claims, and Sign with the active key, as issuer/server's mint does.
func BenchmarkMint(b *testing.B) {
	for _, alg := range algs {
		d, _ := ensured(b, alg)
		now := time.Unix(1_800_000_000, 0)
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			var jti [16]byte
			for b.Loop() {
				_, _ = rand.Read(jti[:])
				payload, err := json.Marshal(sso.Claims{
					Issuer: "http://domain.localhost:8080", Subject: "0f3c2a9e6a1b4d2e9f7c1b2a3c4d5e6f",
					Audience: "domain.localhost", Expiry: now.Add(5 * time.Minute).Unix(), IssuedAt: now.Unix(),
					NotBefore: now.Unix(), ID: base64.RawURLEncoding.EncodeToString(jti[:]),
					SessionID: "Zk3n8Q1w2e3r4t5y6u7i8o", Username: "alice",
				})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Sign(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignIDToken is what the issuer spends signing one ID token per
// algorithm a client may choose, in one run so the ratios can be compared:
// RS256 (the default, 2048-bit) costs far more than EdDSA or ES256.
func BenchmarkSignIDToken(b *testing.B) {
	c := newClock()
	d := mustOpen(b, b.TempDir()+"/keys", allAlgsOptions(c))
	if err := d.Ensure(); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"iss":"http://domain.localhost:8080","sub":"0f3c2a9e6a1b4d2e9f7c1b2a3c4d5e6f","aud":"Xy0123456789abcdefghij","exp":1800000300,"iat":1800000000,"auth_time":1800000000,"nonce":"n-456","amr":["pwd"],"sid":"Zk3n8Q1w2e3r4t5y6u7i8o"}`)
	for _, alg := range wire.IDTokenAlgorithms() {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.SignAs(alg, wire.IDTokenType, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
