package peers

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	jwxjwt "github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

const (
	issuer   = "http://domain.localhost:8080"
	audience = "domain.localhost"
)

// algs are the access-token algorithms Canopy signs with, each compared
// on its own token.
var algs = []string{wire.AlgEdDSA, wire.AlgES256}

// fixture is a real Canopy key directory for one algorithm, a token it
// signed, and the JWKS it publishes, served over loopback HTTP.
type fixture struct {
	alg     string
	dir     *keys.Dir
	token   string
	jwksURL string
	pub     crypto.PublicKey
}

// claims are typical Canopy claims, valid for the whole run, so that no
// library needs a fake clock.
func claims() sso.Claims {
	now := time.Now()
	return sso.Claims{
		Issuer: issuer, Subject: "u_0f3c2a9e6a1b4d2e9f7c1b2a3c4d5e6f", Audience: audience,
		Expiry: now.Add(30 * time.Minute).Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(),
		ID: "q2v7b0m1c9x8z7y6w5v4uA", SessionID: "Zk3n8Q1w2e3r4t5y6u7i8o", Username: "alice",
	}
}

func (f *fixture) sign(t testing.TB, c sso.Claims) string {
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.dir.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newFixture(t testing.TB, alg string) *fixture {
	t.Helper()
	d, err := keys.Open(filepath.Join(t.TempDir(), "keys"), keys.Options{Alg: alg})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ensure(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{alg: alg, dir: d}
	f.token = f.sign(t, claims())
	body, etag := d.JWKS()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("ETag", etag)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	f.jwksURL = srv.URL

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	seg, _, _ := strings.Cut(f.token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(seg)
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	found := set.Key(h.Kid)
	if len(found) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", h.Kid, len(found))
	}
	f.pub = found[0].Key
	return f
}

// verifyFunc verifies a token and returns its username.
type verifyFunc func(tok string) (string, error)

var errSignature = errors.New("bad signature")

// peers builds each verifier against the fixture's JWKS URL. Every one checks
// the signature with the JWKS key, the algorithm (the fixture's only), iss,
// aud and exp, and returns the claims a relying service needs (sid, username).
var peers = []struct {
	name string
	make func(t testing.TB, ctx context.Context, f *fixture) verifyFunc
}{
	{"raw", raw},
	{"canopy-cold", func(t testing.TB, ctx context.Context, f *fixture) verifyFunc { return canopy(t, ctx, f, -1) }},
	{"canopy-warm", func(t testing.TB, ctx context.Context, f *fixture) verifyFunc { return canopy(t, ctx, f, 0) }},
	{"go-oidc", func(t testing.TB, ctx context.Context, f *fixture) verifyFunc {
		ks := oidc.NewRemoteKeySet(ctx, f.jwksURL)
		v := oidc.NewVerifier(issuer, ks, &oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{f.alg}})
		return func(tok string) (string, error) {
			it, err := v.Verify(ctx, tok)
			if err != nil {
				return "", err
			}
			var c struct {
				SessionID string `json:"sid"`
				Username  string `json:"preferred_username"`
			}
			err = it.Claims(&c)
			return c.Username, err
		}
	}},
	{"jwx", func(t testing.TB, ctx context.Context, f *fixture) verifyFunc {
		cache, err := jwk.NewCache(ctx, httprc.NewClient())
		if err != nil {
			t.Fatal(err)
		}
		if err := cache.Register(ctx, f.jwksURL); err != nil {
			t.Fatal(err)
		}
		set, err := cache.CachedSet(f.jwksURL)
		if err != nil {
			t.Fatal(err)
		}
		return func(tok string) (string, error) {
			jt, err := jwxjwt.Parse([]byte(tok), jwxjwt.WithKeySet(set), jwxjwt.WithValidate(true),
				jwxjwt.WithIssuer(issuer), jwxjwt.WithAudience(audience))
			if err != nil {
				return "", err
			}
			var sid, name string
			if err := jt.Get("sid", &sid); err != nil {
				return "", err
			}
			err = jt.Get("preferred_username", &name)
			return name, err
		}
	}},
	{"golang-jwt+keyfunc", func(t testing.TB, ctx context.Context, f *fixture) verifyFunc {
		k, err := keyfunc.NewDefaultCtx(ctx, []string{f.jwksURL})
		if err != nil {
			t.Fatal(err)
		}
		p := jwt.NewParser(jwt.WithValidMethods([]string{f.alg}), jwt.WithIssuer(issuer),
			jwt.WithAudience(audience), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
		return func(tok string) (string, error) {
			var c struct {
				jwt.RegisteredClaims
				SessionID string `json:"sid"`
				Username  string `json:"preferred_username"`
			}
			if _, err := p.ParseWithClaims(tok, &c, k.Keyfunc); err != nil {
				return "", err
			}
			return c.Username, nil
		}
	}},
}

// raw is the floor: the signature of the benchmark's token only, nothing
// parsed, as the standard library checks it (for ES256 with the SHA-256
// of the signing input, which every verifier computes too).
func raw(t testing.TB, _ context.Context, f *fixture) verifyFunc {
	i := strings.LastIndexByte(f.token, '.')
	input := []byte(f.token[:i])
	sig, err := base64.RawURLEncoding.DecodeString(f.token[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	switch pub := f.pub.(type) {
	case ed25519.PublicKey:
		return func(string) (string, error) {
			if !ed25519.Verify(pub, input, sig) {
				return "", errSignature
			}
			return "alice", nil
		}
	case *ecdsa.PublicKey:
		return func(string) (string, error) {
			h := sha256.Sum256(input)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			if !ecdsa.Verify(pub, h[:], r, s) {
				return "", errSignature
			}
			return "alice", nil
		}
	}
	t.Fatalf("raw: no bare check for a %T", f.pub)
	return nil
}

func canopy(t testing.TB, ctx context.Context, f *fixture, cache int) verifyFunc {
	ks := sso.NewRemoteKeySet(ctx, f.jwksURL, sso.RemoteOptions{})
	if err := ks.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := sso.NewVerifier(ks, sso.Config{Issuer: issuer, Audience: audience,
		Algorithms: []string{f.alg}, CacheSize: cache})
	if err != nil {
		t.Fatal(err)
	}
	return func(tok string) (string, error) {
		c, err := v.Verify(ctx, tok)
		if err != nil {
			return "", err
		}
		return c.Username, nil
	}
}

// BenchmarkPeers verifies the same token with each verifier, for each
// algorithm. Each sub-benchmark alternates its verifier with the bare
// signature check, one of each per iteration, timed apart, so that the ratio
// to raw ("×raw") is taken under the same machine load; ns/op counts both,
// peer-ns/op the verifier alone. B/op and allocs/op count both (the bare
// ES256 check allocates; make bench-peers takes its share off).
func BenchmarkPeers(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, alg)
			bare := raw(b, b.Context(), f)
			for _, p := range peers {
				b.Run(p.name, func(b *testing.B) {
					verify := p.make(b, b.Context(), f)
					var peerT, rawT time.Duration
					n := 0
					b.ReportAllocs()
					for b.Loop() {
						t0 := time.Now()
						name, err := verify(f.token)
						t1 := time.Now()
						if _, rerr := bare(f.token); rerr != nil {
							b.Fatal(rerr)
						}
						t2 := time.Now()
						if err != nil || name != "alice" {
							b.Fatalf("verify: %q, %v", name, err)
						}
						peerT += t1.Sub(t0)
						rawT += t2.Sub(t1)
						n++
					}
					b.ReportMetric(float64(peerT.Nanoseconds())/float64(n), "peer-ns/op")
					b.ReportMetric(float64(peerT)/float64(rawT), "×raw")
				})
			}
		})
	}
}

// TestPeersCheck makes sure every peer is configured to refuse what Canopy
// refuses on these axes, for each algorithm, so that the benchmark compares
// like with like.
func TestPeersCheck(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			c := claims()
			// Both algorithms' signatures are 64 bytes.
			forged := f.token[:strings.LastIndexByte(f.token, '.')+1] + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
			bad := map[string]string{
				"forged signature": forged,
				"wrong iss":        f.sign(t, with(c, func(c *sso.Claims) { c.Issuer = "http://evil.localhost" })),
				"wrong aud":        f.sign(t, with(c, func(c *sso.Claims) { c.Audience = "evil.localhost" })),
				"expired":          f.sign(t, with(c, func(c *sso.Claims) { c.Expiry = time.Now().Add(-time.Hour).Unix() })),
				"other key":        otherKeyToken(t, alg, c),
			}
			for _, p := range peers[1:] { // raw checks only the benchmark's own token
				t.Run(p.name, func(t *testing.T) {
					verify := p.make(t, t.Context(), f)
					if name, err := verify(f.token); err != nil || name != "alice" {
						t.Fatalf("good token: %q, %v", name, err)
					}
					for what, tok := range bad {
						if _, err := verify(tok); err == nil {
							t.Errorf("%s: accepted", what)
						}
					}
				})
			}
		})
	}
}

func with(c sso.Claims, f func(*sso.Claims)) sso.Claims {
	f(&c)
	return c
}

// otherKeyToken signs good claims with a key of alg that is not in the
// JWKS, under a kid of the same shape.
func otherKeyToken(t *testing.T, alg string, c sso.Claims) string {
	var key any
	switch alg {
	case wire.AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = priv
	case wire.AlgES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = priv
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: key, KeyID: "stranger"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
