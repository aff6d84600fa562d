package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func TestGenerate(t *testing.T) {
	m := meta{State: StateNext, Created: time.Unix(1_800_000_000, 0).UTC(), Published: time.Unix(1_800_000_000, 0).UTC()}
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			seen := map[string]bool{}
			for range 50 {
				k, err := generate(alg, m)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := base64.RawURLEncoding.DecodeString(k.kid)
				if err != nil || len(raw) != kidBytes {
					t.Fatalf("kid %q is not %d base64url bytes (%v)", k.kid, kidBytes, err)
				}
				if seen[k.kid] {
					t.Fatalf("kid %s repeated", k.kid)
				}
				seen[k.kid] = true
				switch alg {
				case wire.AlgEdDSA:
					if _, ok := k.priv.(ed25519.PrivateKey); !ok {
						t.Fatalf("private key is %T", k.priv)
					}
				case wire.AlgES256:
					priv, ok := k.priv.(*ecdsa.PrivateKey)
					if !ok || priv.Curve != elliptic.P256() {
						t.Fatalf("private key is %T, want P-256", k.priv)
					}
				}
			}
		})
	}
}

func TestGenerateRejectsUnknownAlg(t *testing.T) {
	for _, alg := range []string{"", "RS384", "PS256", "HS256", "none", "eddsa", "rs256"} {
		if _, err := generate(alg, meta{}); err == nil {
			t.Errorf("generate(%q) succeeded", alg)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	ts := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			m := meta{State: StateRetired, Created: ts(100), Published: ts(100), Activated: ts(200), Retired: ts(300), DeleteAfter: ts(400)}
			k, err := generate(alg, m)
			if err != nil {
				t.Fatal(err)
			}
			data, err := encodeKey(k)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeKey(k.kid+fileExt, data)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, data)
			}
			if got.kid != k.kid || got.alg != alg || got.meta != m {
				t.Errorf("round trip: got %s %s %+v, want %s %s %+v", got.kid, got.alg, got.meta, k.kid, alg, m)
			}
			type privEqualer interface{ Equal(crypto.PrivateKey) bool }
			type pubEqualer interface{ Equal(crypto.PublicKey) bool }
			if !got.priv.(privEqualer).Equal(k.priv) || !got.pub.(pubEqualer).Equal(k.pub) {
				t.Error("key material changed in the round trip")
			}
		})
	}
}

func TestUnixCeil(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want int64
	}{
		{time.Unix(10, 0), 10},
		{time.Unix(10, 1), 11},
		{time.Unix(10, 999_999_999), 11},
	} {
		if got := unixCeil(tc.in); got != tc.want {
			t.Errorf("unixCeil(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestKIDNeverLooksLikeAFlag: `issuer keys revoke KID` takes the kid as an
// argument, so no kid may begin with '-' (one in 64 random ones would).
func TestKIDNeverLooksLikeAFlag(t *testing.T) {
	for range 2000 {
		kid, err := newKID()
		if err != nil {
			t.Fatal(err)
		}
		if kid[0] == '-' {
			t.Fatalf("kid %q begins with '-': the CLI reads it as a flag", kid)
		}
	}
}
