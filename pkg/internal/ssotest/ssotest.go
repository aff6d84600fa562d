// Package ssotest holds the test fixtures pkg/sso, pkg/ssohttp and
// pkg/ssoecho share: signing keys made in the test, tokens, an injected
// Clock, and httptest servers for a JWKS, a revocation feed and a whole
// issuer. Only tests import it.
package ssotest

import (
	"bytes"
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

// The issuer and audience the tokens of ValidClaims name.
const (
	Issuer   = "http://domain.localhost:8080"
	Audience = "domain.localhost"
)

// Epoch is the tests' "now"; clocks are injected, nothing sleeps for expiry.
var Epoch = time.Unix(1_800_000_000, 0)

// Key is a signing key made in the test (the keys package is not used).
type Key struct {
	KID  string        // the kid of its JWK and its tokens
	Alg  string        // wire.AlgEdDSA or wire.AlgES256
	Priv crypto.Signer // ed25519.PrivateKey or *ecdsa.PrivateKey
}

// NewEdKey makes an Ed25519 key.
func NewEdKey(t testing.TB, kid string) *Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Alg: wire.AlgEdDSA, Priv: priv}
}

// NewESKey makes a P-256 key.
func NewESKey(t testing.TB, kid string) *Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Alg: wire.AlgES256, Priv: priv}
}

// JWK is the public key as the issuer publishes it.
func (k *Key) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Priv.Public(), KeyID: k.KID, Algorithm: k.Alg, Use: "sig"}
}

// SignRaw signs any header and claims text, so tests can build tokens no
// JOSE library would (duplicate keys, crit, wrong types).
func (k *Key) SignRaw(t testing.TB, header, claims string) string {
	t.Helper()
	input := B64(header) + "." + B64(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.SigOver(t, input))
}

// SigOver is the signature over a signing input, in JWS form.
func (k *Key) SigOver(t testing.TB, input string) []byte {
	switch priv := k.Priv.(type) {
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
	t.Fatalf("unknown key type %T", k.Priv)
	return nil
}

// Header returns the header a Canopy issuer writes.
func (k *Key) Header() string {
	return `{"alg":"` + k.Alg + `","kid":"` + k.KID + `","typ":"at+jwt"}`
}

// Mint signs claims with go-jose, as the issuer does.
func (k *Key) Mint(t testing.TB, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: jose.JSONWebKey{Key: k.Priv, KeyID: k.KID}},
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

// B64 is unpadded base64url of s.
func B64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// ValidClaims are good at Epoch; tests change one field at a time.
func ValidClaims() map[string]any {
	return map[string]any{
		"iss": Issuer, "aud": Audience, "sub": "u_alice", "sid": "s_1",
		"jti": "j_0123456789abcdef", "preferred_username": "alice",
		"iat": Epoch.Unix(), "nbf": Epoch.Unix(), "exp": Epoch.Unix() + 300,
	}
}

// With returns a copy of c with the given key-value pairs set (a nil
// value deletes the key).
func With(c map[string]any, kv ...any) map[string]any {
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

// ClaimsJSON marshals c.
func ClaimsJSON(t testing.TB, c map[string]any) string {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Clock is an injected, settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at Epoch.
func NewClock() *Clock { return &Clock{t: Epoch} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// JWKSServer is a real issuer JWKS endpoint whose answers a test can change.
type JWKSServer struct {
	*httptest.Server
	Fetches     atomic.Int64
	NotModified atomic.Int64

	mu sync.Mutex
	// The fields below are what the server answers; change them with Set.
	Body        []byte
	Status      int
	ContentType string
	MaxAge      string // Cache-Control value
	Truncate    bool
	Gate        chan struct{} // when set, requests wait on it
}

// NewJWKSServer serves keys until the test ends.
func NewJWKSServer(t testing.TB, keys ...*Key) *JWKSServer {
	s := &JWKSServer{Status: 200, ContentType: "application/json", MaxAge: "public, max-age=300"}
	s.SetKeys(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.ServeHTTP))
	t.Cleanup(s.Close)
	return s
}

// SetKeys publishes keys instead.
func (s *JWKSServer) SetKeys(keys ...*Key) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	b, _ := json.Marshal(set)
	s.SetBody(b)
}

// SetBody publishes b as it is.
func (s *JWKSServer) SetBody(b []byte) {
	s.mu.Lock()
	s.Body = b
	s.mu.Unlock()
}

// Set changes the answers under the server's lock.
func (s *JWKSServer) Set(f func(s *JWKSServer)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// ServeHTTP answers as configured, with an ETag and If-None-Match.
func (s *JWKSServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Fetches.Add(1)
	s.mu.Lock()
	body, status, ctype, maxAge, truncate, gate := s.Body, s.Status, s.ContentType, s.MaxAge, s.Truncate, s.Gate
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
			s.NotModified.Add(1)
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

// FetchCount returns how many requests the server has answered.
func (s *JWKSServer) FetchCount() int64 { return s.Fetches.Load() }

// DiscardLogger logs nothing.
func DiscardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// FixedKeys returns an Ed25519 and a P-256 key made from fixed seeds, so
// that a seed corpus in testdata/fuzz holds tokens that verify.
func FixedKeys(t testing.TB) (ed, es *Key) {
	ed = &Key{KID: "fz-ed", Alg: wire.AlgEdDSA, Priv: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	esPriv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return ed, &Key{KID: "fz-es", Alg: wire.AlgES256, Priv: esPriv}
}

// RevokedSet is a revocation checker (sso.RevocationChecker) for tests.
type RevokedSet map[string]bool

// Revoked reports whether sid is in the set.
func (r RevokedSet) Revoked(sid string) bool { return r[sid] }
