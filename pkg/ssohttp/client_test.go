package ssohttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// probeTTL is how long sso.Client keeps an issuer health probe's answer.
const probeTTL = 5 * time.Second

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

	client, err := sso.New(context.Background(), sso.Options{Issuer: issuerURL, Logger: ssotest.DiscardLogger(), RevocationPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	protect, err := Middleware(client, MiddlewareConfig{Logger: ssotest.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h := protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		_, _ = io.WriteString(w, "hello "+c.Username)
	}))
	k := ssotest.NewEdKey(t, "k1")
	claims := ssotest.With(ssotest.ValidClaims(), "iss", issuerURL, "iat", time.Now().Unix(), "nbf", time.Now().Unix(), "exp", time.Now().Unix()+300)
	tok := k.Mint(t, claims)
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
	if _, err := client.Verify(context.Background(), tok); sso.Reason(err) != "unavailable" {
		t.Fatalf("Verify before discovery: %v", err)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	issuer := ssotest.NewFakeIssuer(t, ln, k)
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
	issuer.Feed.Set(`{"revoked":[{"sid":"s_1","until":`+ssotest.Itoa(time.Now().Unix()+300)+`}]}`, false)
	ssotest.WaitFor(t, func() bool { return get().Code == 401 })
	if rec := get(); !strings.Contains(rec.Body.String(), `"reason":"revoked"`) {
		t.Fatalf("revoked: %q", rec.Body.String())
	}

	// Every goroutine the Client started ends with Close.
	client.Close()
	issuer.Close()
	issuer.Keys.Close()
	issuer.Feed.Close()
	ssotest.WaitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func TestClientIssuerDownPage(t *testing.T) {
	k := ssotest.NewEdKey(t, "k1")
	issuer := ssotest.NewFakeIssuer(t, nil, k)
	issuer.Start()
	clk := ssotest.NewClock()
	client, err := sso.New(context.Background(), sso.Options{Issuer: issuer.URL, Logger: ssotest.DiscardLogger(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	protect, _ := Middleware(client, MiddlewareConfig{Logger: ssotest.DiscardLogger(), Now: clk.Now})
	h := protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	now := ssotest.Epoch.Unix()
	expired := k.Mint(t, ssotest.With(ssotest.ValidClaims(), "iss", issuer.URL, "iat", now-400, "nbf", now-400, "exp", now-100))
	valid := k.Mint(t, ssotest.With(ssotest.ValidClaims(), "iss", issuer.URL))
	serve := func(tok string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req("GET", "/", browser(), cookieLine("canopy="+tok)))
		return rec
	}
	if rec := serve(expired); rec.Code != 303 {
		t.Fatalf("issuer up, expired: %d", rec.Code)
	}
	issuer.SetDown(true)
	clk.Add(probeTTL) // the last probe's answer is stale
	if rec := serve(expired); rec.Code != 503 || !strings.Contains(rec.Body.String(), "still signed in") {
		t.Fatalf("issuer down, expired: %d %s", rec.Code, rec.Body.String())
	}
	if rec := serve(valid); rec.Code != 200 {
		t.Fatalf("issuer down, valid token: %d", rec.Code)
	}
	issuer.SetDown(false)
	clk.Add(probeTTL)
	if rec := serve(expired); rec.Code != 303 {
		t.Fatalf("issuer back, expired: %d", rec.Code)
	}
}
