package sso

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// fakeIssuer serves what a Canopy issuer publishes: discovery, the JWKS, the
// revocation feed and /healthz.
type fakeIssuer struct {
	*httptest.Server
	url  string
	keys *jwksServer
	feed *feedServer
	mu   sync.Mutex
	down bool
}

// newFakeIssuer serves on ln (or a fresh listener when nil), without starting.
func newFakeIssuer(t *testing.T, ln net.Listener, k *testKey) *fakeIssuer {
	f := &fakeIssuer{keys: newJWKSServer(t, k), feed: newFeedServer(t, `{"revoked":[]}`)}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	f.url = "http://domain.localhost:" + port
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(wire.Discovery{
			Issuer: f.url, JWKSURI: f.url + "/.well-known/jwks.json", Algorithms: []string{wire.AlgEdDSA, wire.AlgES256},
			CookieName: "canopy", CookieDomain: "domain.localhost", RevocationURI: f.url + "/sessions/revoked",
			RefreshURI: f.url + "/refresh", LoginURI: f.url + "/login",
		})
	})
	mux.HandleFunc("/.well-known/jwks.json", f.keys.serve)
	mux.HandleFunc("/sessions/revoked", func(w http.ResponseWriter, r *http.Request) { f.feed.Config.Handler.ServeHTTP(w, r) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down := f.down
		f.mu.Unlock()
		if down {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	f.Listener = ln
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIssuer) setDown(d bool) {
	f.mu.Lock()
	f.down = d
	f.mu.Unlock()
}

func TestClientStartsWhileIssuerDown(t *testing.T) {
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the issuer is not up yet
	_, port, _ := net.SplitHostPort(addr)
	issuerURL := "http://domain.localhost:" + port

	client, err := New(context.Background(), Options{Issuer: issuerURL, Logger: discardLogger(), RevocationPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	protect, err := client.Middleware(MiddlewareConfig{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h := protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		_, _ = io.WriteString(w, "hello "+c.Username)
	}))
	k := newEdKey(t, "k1")
	claims := with(validClaims(), "iss", issuerURL, "iat", time.Now().Unix(), "nbf", time.Now().Unix(), "exp", time.Now().Unix()+300)
	tok := k.mint(t, claims)
	get := func(opts ...func(*http.Request)) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req("GET", "/", append([]func(*http.Request){cookieLine("canopy=" + tok)}, opts...)...))
		return rec
	}

	if rec := get(); rec.Code != 503 || client.Ready() {
		t.Fatalf("issuer down: %d, ready %v", rec.Code, client.Ready())
	}
	if rec := get(browser()); rec.Code != 503 || !strings.Contains(rec.Body.String(), "Sign-in service unavailable") {
		t.Fatalf("issuer down, navigation: %d", rec.Code)
	}
	if _, err := client.Verify(context.Background(), tok); Reason(err) != "unavailable" {
		t.Fatalf("Verify before discovery: %v", err)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	issuer := newFakeIssuer(t, ln, k)
	issuer.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := get(); rec.Code != 200 || rec.Body.String() != "hello alice" {
		t.Fatalf("issuer up: %d %q", rec.Code, rec.Body.String())
	}
	if d := client.Discovery(); d == nil || d.CookieDomain != "domain.localhost" || client.Verifier() == nil || client.KeySet() == nil {
		t.Fatal("discovery not exposed")
	}

	// Revocation reaches the cached token through the feed.
	issuer.feed.set(`{"revoked":[{"sid":"s_1","until":`+itoa(time.Now().Unix()+300)+`}]}`, false)
	waitFor(t, func() bool { return get().Code == 401 })
	if rec := get(); !strings.Contains(rec.Body.String(), `"reason":"revoked"`) {
		t.Fatalf("revoked: %q", rec.Body.String())
	}

	// Every goroutine the Client started ends with Close.
	client.Close()
	issuer.Close()
	issuer.keys.Close()
	issuer.feed.Close()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func TestClientIssuerDownPage(t *testing.T) {
	k := newEdKey(t, "k1")
	issuer := newFakeIssuer(t, nil, k)
	issuer.Start()
	clk := newClock()
	client, err := New(context.Background(), Options{Issuer: issuer.url, Logger: discardLogger(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	protect, _ := client.Middleware(MiddlewareConfig{Logger: discardLogger(), Now: clk.Now})
	h := protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	now := testEpoch.Unix()
	expired := k.mint(t, with(validClaims(), "iss", issuer.url, "iat", now-400, "nbf", now-400, "exp", now-100))
	valid := k.mint(t, with(validClaims(), "iss", issuer.url))
	serve := func(tok string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req("GET", "/", browser(), cookieLine("canopy="+tok)))
		return rec
	}
	if rec := serve(expired); rec.Code != 303 {
		t.Fatalf("issuer up, expired: %d", rec.Code)
	}
	issuer.setDown(true)
	clk.Add(probeTTL) // the last probe's answer is stale
	if rec := serve(expired); rec.Code != 503 || !strings.Contains(rec.Body.String(), "still signed in") {
		t.Fatalf("issuer down, expired: %d %s", rec.Code, rec.Body.String())
	}
	if rec := serve(valid); rec.Code != 200 {
		t.Fatalf("issuer down, valid token: %d", rec.Code)
	}
	issuer.setDown(false)
	clk.Add(probeTTL)
	if rec := serve(expired); rec.Code != 303 {
		t.Fatalf("issuer back, expired: %d", rec.Code)
	}
}

func TestNewValidates(t *testing.T) {
	for _, issuer := range []string{"", "domain.localhost", "ftp://x", "/relative", "http://user:pw@x"} {
		if _, err := New(context.Background(), Options{Issuer: issuer}); err == nil {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
}

func TestDiscover(t *testing.T) {
	k := newEdKey(t, "k1")
	issuer := newFakeIssuer(t, nil, k)
	issuer.Start()
	d, err := Discover(context.Background(), issuer.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.JWKSURI != issuer.url+"/.well-known/jwks.json" || d.CookieName != "canopy" || d.RefreshURI != issuer.url+"/refresh" {
		t.Fatalf("%+v", d)
	}
	// Another issuer's document is refused.
	if _, err := Discover(context.Background(), issuer.url+"/", nil); err == nil || !strings.Contains(err.Error(), "issuer is") {
		t.Fatalf("mismatched issuer: %v", err)
	}
	issuer.setDown(true)
	if _, err := Discover(context.Background(), issuer.url, nil); err == nil {
		t.Fatal("down issuer discovered")
	}
}
