package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

// TestOIDCBackchannelCLI: `issuer user disable`, run in its own process
// while the issuer serves, ends the person's session; the serving issuer
// finds the outbox row that command wrote and POSTs a logout token to the
// client that received tokens in the session, which verifies with go-oidc
// against the issuer's published keys and names the ID token's sid. A
// second client with a back-channel URI, which got no token, hears nothing.
func TestOIDCBackchannelCLI(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := oidc.ClientContext(context.Background(), &http.Client{Transport: localhost.Transport()})
	provider, err := oidc.NewProvider(ctx, s.issuerURL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var mu sync.Mutex
	got := map[string][]string{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], r.PostForm.Get("logout_token"))
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	received := func(path string) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got[path]...)
	}

	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	wiki := s.addClient(t, "wiki", "--redirect-uri", redirect, "--backchannel-logout-uri", recv.URL+"/wiki")
	s.addClient(t, "idle", "--redirect-uri", redirect, "--backchannel-logout-uri", recv.URL+"/idle")
	oc := oauth2.Config{ClientID: wiki.ID, ClientSecret: wiki.Secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID}}
	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", "correct horse battery", s.userURL("alice")); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	verifier := oauth2.GenerateVerifier()
	q := codeFromRedirect(t, b.navigate(oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))), redirect)
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	v := provider.Verifier(&oidc.Config{ClientID: wiki.ID})
	idt, err := v.Verify(ctx, rawID)
	if err != nil {
		t.Fatal(err)
	}
	var idClaims struct {
		SID string `json:"sid"`
	}
	if err := idt.Claims(&idClaims); err != nil || idClaims.SID == "" {
		t.Fatalf("ID token sid %q: %v", idClaims.SID, err)
	}

	if out, err := s.issuerCmd(t, "", "user", "disable", "alice"); err != nil {
		t.Fatalf("user disable: %v\n%s", err, out)
	}
	waitFor(t, 15*time.Second, "a logout token at the client", func() bool { return len(received("/wiki")) > 0 })
	raw := received("/wiki")[0]
	lt, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc refuses the logout token: %v", err)
	}
	var claims struct {
		SID    string                    `json:"sid"`
		Events map[string]map[string]any `json:"events"`
		Nonce  *string                   `json:"nonce"`
	}
	if err := lt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if _, ok := claims.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok || claims.SID != idClaims.SID ||
		lt.Subject != idt.Subject || claims.Nonce != nil {
		t.Errorf("logout token sub %s sid %s events %v nonce %v; want the ID token's sub %s and sid %s", lt.Subject, claims.SID,
			claims.Events, claims.Nonce, idt.Subject, idClaims.SID)
	}
	if typ := tokenPart(raw, 0)["typ"]; typ != "logout+jwt" {
		t.Errorf("logout token typ %v", typ)
	}
	// The client's tokens died with the session.
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("userinfo after the session ended: %v", err)
	}
	if n := len(received("/idle")); n != 0 {
		t.Errorf("the client that got no token was sent %d logout tokens", n)
	}
}
