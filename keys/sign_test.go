package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// claims is a typical access token payload, for a realistic size.
var claims = []byte(`{"iss":"http://domain.localhost:8080","sub":"0f3c2a9e-6a1b-4d2e-9f7c-1b2a3c4d5e6f","aud":"domain.localhost","exp":1800000300,"iat":1800000000,"nbf":1800000000,"jti":"q2v7b0m1c9x8z7y6w5v4uA","sid":"Zk3n8Q1w2e3r4t5y6u7i8o","preferred_username":"alice"}`)

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

func rawHeader(t testing.TB, token string) []byte {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments, want 3", token, len(parts))
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("header segment: %v", err)
	}
	return h
}

func header(t testing.TB, token string) jwsHeader {
	t.Helper()
	var h jwsHeader
	if err := json.Unmarshal(rawHeader(t, token), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func mustSign(t testing.TB, d *Dir) string {
	t.Helper()
	token, err := d.Sign(claims)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return token
}

// verifyWithJWKS verifies token the way a relying service does: with the key
// the published set holds for its kid, and nothing else.
func verifyWithJWKS(t testing.TB, d *Dir, token string) error {
	t.Helper()
	body, _ := d.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("go-jose cannot parse the JWKS: %v\n%s", err, body)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		t.Fatalf("ParseSignedCompact: %v", err)
	}
	h := jws.Signatures[0].Header
	found := set.Key(h.KeyID)
	if len(found) != 1 {
		return fmt.Errorf("kid %s: %d keys in the JWKS, want 1", h.KeyID, len(found))
	}
	if found[0].Algorithm != h.Algorithm {
		t.Fatalf("token alg %s, key alg %s", h.Algorithm, found[0].Algorithm)
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		return err
	}
	if !bytes.Equal(payload, claims) {
		t.Fatalf("payload %s", payload)
	}
	return nil
}

func TestSignHeaderExact(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			d, _ := ensured(t, alg)
			token := mustSign(t, d)
			want := `{"alg":"` + alg + `","kid":"` + one(t, d, StateActive).KID + `","typ":"at+jwt"}`
			if got := string(rawHeader(t, token)); got != want {
				t.Errorf("header %s\nwant   %s", got, want)
			}
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
			if err != nil || !bytes.Equal(payload, claims) {
				t.Errorf("payload %s (%v)", payload, err)
			}
		})
	}
}

func TestSignVerifiesWithJWKSAlone(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			d, _ := ensured(t, alg)
			token := mustSign(t, d)
			if err := verifyWithJWKS(t, d, token); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// Still valid once its key is retired: it stays published.
			if err := d.Rotate(true); err != nil {
				t.Fatal(err)
			}
			if err := verifyWithJWKS(t, d, token); err != nil {
				t.Fatalf("verify after rotation: %v", err)
			}
			fresh := mustSign(t, d)
			if header(t, fresh).Kid == header(t, token).Kid {
				t.Fatal("rotation did not change the signing key")
			}
			if err := verifyWithJWKS(t, d, fresh); err != nil {
				t.Fatalf("verify with the new key: %v", err)
			}
			// Revocation takes its tokens with it.
			if err := d.Revoke(header(t, token).Kid); err != nil {
				t.Fatal(err)
			}
			if err := verifyWithJWKS(t, d, token); err == nil {
				t.Fatal("token of a revoked key still verifies")
			}
		})
	}
}

func TestSignConcurrentWithRotation(t *testing.T) {
	d, _ := ensured(t, wire.AlgES256)
	var wg sync.WaitGroup
	tokens := make([][]string, 8)
	for i := range tokens {
		wg.Go(func() {
			for range 50 {
				token, err := d.Sign(claims)
				if err != nil {
					t.Error(err)
					return
				}
				tokens[i] = append(tokens[i], token)
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := d.Rotate(true); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for _, ts := range tokens {
		for _, token := range ts {
			if err := verifyWithJWKS(t, d, token); err != nil {
				t.Fatalf("verify: %v", err)
			}
		}
	}
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range algs {
		d, _ := ensured(b, alg)
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Sign(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := d.Sign(claims); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
