package sso

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

const (
	testIssuer   = "http://domain.localhost:8080"
	testAudience = "domain.localhost"
)

// testEpoch is the tests' "now"; clocks are injected, nothing sleeps for expiry.
var testEpoch = time.Unix(1_800_000_000, 0)

// testKey is a signing key made in the test (the keys package is not used).
type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func newEdKey(t testing.TB, kid string) *testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, alg: wire.AlgEdDSA, priv: priv}
}

func newESKey(t testing.TB, kid string) *testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, alg: wire.AlgES256, priv: priv}
}

// jwk is the public key as the issuer publishes it.
func (k *testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"}
}

// signRaw signs any header and claims text, so tests can build tokens no
// JOSE library would (duplicate keys, crit, wrong types).
func (k *testKey) signRaw(t testing.TB, header, claims string) string {
	t.Helper()
	input := b64s(header) + "." + b64s(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.sigOver(t, input))
}

func (k *testKey) sigOver(t testing.TB, input string) []byte {
	switch priv := k.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, []byte(input))
	case *ecdsa.PrivateKey:
		h := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
	t.Fatalf("unknown key type %T", k.priv)
	return nil
}

// header returns the header a Canopy issuer writes.
func (k *testKey) header() string {
	return `{"alg":"` + k.alg + `","kid":"` + k.kid + `","typ":"at+jwt"}`
}

// mint signs claims with go-jose, as the issuer does.
func (k *testKey) mint(t testing.TB, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType(wire.TokenType))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
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

func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// validClaims are good at testEpoch; tests change one field at a time.
func validClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "u_alice", "sid": "s_1",
		"jti": "j_0123456789abcdef", "preferred_username": "alice",
		"iat": testEpoch.Unix(), "nbf": testEpoch.Unix(), "exp": testEpoch.Unix() + 300,
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func claimsJSON(t testing.TB, c map[string]any) string {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clock is an injected, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testEpoch} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer is a real issuer JWKS endpoint whose answers a test can change.
type jwksServer struct {
	*httptest.Server
	fetches     atomic.Int64
	notModified atomic.Int64

	mu       sync.Mutex
	body     []byte
	status   int
	ctype    string
	maxAge   string // Cache-Control value
	truncate bool
	gate     chan struct{} // when set, requests wait on it
}

func newJWKSServer(t testing.TB, keys ...*testKey) *jwksServer {
	s := &jwksServer{status: 200, ctype: "application/json", maxAge: "public, max-age=300"}
	s.setKeys(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...*testKey) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, _ := json.Marshal(set)
	s.setBody(b)
}

func (s *jwksServer) setBody(b []byte) {
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	body, status, ctype, maxAge, truncate, gate := s.body, s.status, s.ctype, s.maxAge, s.truncate, s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:8]) + `"`
	w.Header().Set("Cache-Control", maxAge)
	if status == 200 {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			s.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", ctype)
	if truncate {
		w.Header().Set("Content-Length", "100000")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// fetchCount returns how many requests the server has answered.
func (s *jwksServer) fetchCount() int64 { return s.fetches.Load() }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
