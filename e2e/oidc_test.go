package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

// oidcClient is a client registered with `issuer client add`.
type oidcClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

func (s *stack) addClient(t *testing.T, args ...string) oidcClient {
	t.Helper()
	out, err := s.issuerCmd(t, "", append([]string{"client", "add"}, args...)...)
	if err != nil {
		t.Fatalf("client add: %v\n%s", err, out)
	}
	var c oidcClient
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" {
		t.Fatalf("client add printed %q: %v", out, err)
	}
	return c
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// codeFromRedirect reads code (or error) and state from the issuer's
// redirect to the client.
func codeFromRedirect(t *testing.T, r response, redirectURI string) url.Values {
	t.Helper()
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, redirectURI+"?") {
		t.Fatalf("authorize: %d to %q, want a redirect to %s\n%s", r.status, r.location, redirectURI, r.body)
	}
	u, err := url.Parse(r.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestOIDCProvider drives the real issuer with the field's client libraries
// (coreos/go-oidc for discovery and ID token verification, x/oauth2 for the
// code exchange with PKCE): a person signed in at a relying service's page
// passes with no form; the ID token verifies and carries the cookie
// token's sub; userinfo answers; the client's tokens are refused by the
// relying service; a replayed code revokes its token; a removed client's
// token stops working; prompt=none without a session is login_required.
func TestOIDCProvider(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := oidc.ClientContext(context.Background(), &http.Client{Transport: localhost.Transport()})
	provider, err := oidc.NewProvider(ctx, s.issuerURL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	appPort := freePort(t)
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", appPort)
	conf := s.addClient(t, "grafana", "--redirect-uri", redirect)
	oc := oauth2.Config{ClientID: conf.ID, ClientSecret: conf.Secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "groups"}}
	if oc.Endpoint.AuthStyle != oauth2.AuthStyleAutoDetect {
		t.Logf("auth style %v", oc.Endpoint.AuthStyle)
	}

	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", "correct horse battery", s.userURL("alice")); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	cookieToken := b.cookie(s.issuerURL, "canopy").Value

	// Signed in: the code comes without a form.
	state, nonce, verifier := randomString(t), randomString(t), oauth2.GenerateVerifier()
	q := codeFromRedirect(t, b.navigate(oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))), redirect)
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	code := q.Get("code")
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: conf.ID}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc refuses the ID token: %v", err)
	}
	if idt.Nonce != nonce || idt.Subject != tokenPart(cookieToken, 1)["sub"] {
		t.Errorf("ID token nonce %q sub %q, want %q and the cookie token's sub %v", idt.Nonce, idt.Subject, nonce, tokenPart(cookieToken, 1)["sub"])
	}
	if alg := tokenPart(rawID, 0)["alg"]; alg != "RS256" {
		t.Errorf("ID token alg %v, want RS256", alg)
	}
	var claims struct {
		Username string `json:"preferred_username"`
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != idt.Subject || info.Claims(&claims) != nil || claims.Username != "alice" {
		t.Fatalf("userinfo %+v %+v: %v", info, claims, err)
	}

	// The client's tokens are not access cookies: the relying service refuses both.
	c := rawClient()
	for name, bearer := range map[string]string{"access token": tok.AccessToken, "ID token": rawID} {
		h, err := visit(c, s.userURL("alice"), bearer)
		if err != nil {
			t.Fatal(err)
		}
		if h.status != http.StatusUnauthorized {
			t.Errorf("relying service answered %d to the client's %s", h.status, name)
		}
	}
	if h, err := visit(c, s.userURL("alice"), cookieToken); err != nil || h.status != http.StatusOK {
		t.Errorf("the cookie token itself: %d, %v", h.status, err)
	}

	// A replayed code fails and revokes the token it issued.
	if _, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
		t.Error("a replayed code was exchanged")
	} else {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("replay: %v, want invalid_grant", err)
		}
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("the token of a replayed code still works")
	}

	// offline_access: x/oauth2 refreshes an expired token by itself, and the
	// refresh token rotates.
	oo := oc
	oo.Scopes = append([]string{oidc.ScopeOfflineAccess}, oc.Scopes...)
	verifier = oauth2.GenerateVerifier()
	q = codeFromRedirect(t, b.navigate(oo.AuthCodeURL("s5", oauth2.S256ChallengeOption(verifier))), redirect)
	otok, err := oo.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || otok.RefreshToken == "" {
		t.Fatalf("offline_access exchange: %+v, %v", otok, err)
	}
	stale := *otok
	stale.Expiry = time.Now().Add(-time.Minute)
	fresh, err := oo.TokenSource(ctx, &stale).Token()
	if err != nil || fresh.AccessToken == otok.AccessToken || fresh.RefreshToken == otok.RefreshToken {
		t.Fatalf("refresh: %+v, %v", fresh, err)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(fresh)); err != nil {
		t.Errorf("userinfo with a refreshed token: %v", err)
	}

	// A public client: PKCE, no secret.
	spaRedirect := fmt.Sprintf("http://127.0.0.1:%d/spa", appPort)
	spa := s.addClient(t, "spa", "--public", "--redirect-uri", spaRedirect, "--id-token-alg", "ES256")
	if spa.Secret != "" {
		t.Errorf("public client got a secret")
	}
	po := oauth2.Config{ClientID: spa.ID, Endpoint: provider.Endpoint(), RedirectURL: spaRedirect, Scopes: []string{oidc.ScopeOpenID}}
	po.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier = oauth2.GenerateVerifier()
	q = codeFromRedirect(t, b.navigate(po.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier))), spaRedirect)
	ptok, err := po.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("public exchange: %v", err)
	}
	pid, _ := ptok.Extra("id_token").(string)
	if _, err := provider.Verifier(&oidc.Config{ClientID: spa.ID, SupportedSigningAlgs: []string{"ES256"}}).Verify(ctx, pid); err != nil {
		t.Errorf("ES256 ID token: %v", err)
	}
	// Without PKCE the public client gets an error, not a code.
	q = codeFromRedirect(t, b.navigate(po.AuthCodeURL("s3")), spaRedirect)
	if q.Get("error") != "invalid_request" || q.Get("code") != "" {
		t.Errorf("public client without PKCE: %v", q)
	}

	// A removed client's token stops working at once.
	if out, err := s.issuerCmd(t, "", "client", "remove", "spa"); err != nil {
		t.Fatalf("client remove: %v\n%s", err, out)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(ptok)); err == nil {
		t.Error("a removed client's token still works")
	}

	// prompt=none with no session: login_required, not a page.
	nb := newBrowser(t)
	q = codeFromRedirect(t, nb.navigate(oc.AuthCodeURL("s4", oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))), redirect)
	if q.Get("error") != "login_required" {
		t.Errorf("prompt=none without a session: %v", q)
	}
}
