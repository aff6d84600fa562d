package keys

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
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
