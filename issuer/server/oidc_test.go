package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// idClaims verifies an ID token against the issuer's published keys, the
// way an OIDC client does, and returns its header and claims.
func (h *harness) idClaims(t *testing.T, tok string) (jose.Header, idTokenClaims) {
	t.Helper()
	body, _ := h.srv.keys.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.Signatures[0].Header
	ks := set.Key(hdr.KeyID)
	if len(ks) != 1 || ks[0].Algorithm != hdr.Algorithm {
		t.Fatalf("no published key for %s/%s", hdr.KeyID, hdr.Algorithm)
	}
	payload, err := jws.Verify(ks[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var c idTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return hdr, c
}

// TestProviderCodeFlow: a signed-in person passes /authorize with no form;
// the ID token is for the client, signed with its algorithm, with the
// cookie token's sub; userinfo answers for the access token.
func TestProviderCodeFlow(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true})
	alice := h.createUser("alice", "correct horse battery")
	if err := h.store.AddGroup(t.Context(), alice.ID, "admins"); err != nil {
		t.Fatal(err)
	}
	cs := h.testClients("")
	b := h.browser()
	b.login("alice", "correct horse battery")
	for _, name := range []string{"conf", "pub", "grouped", "eddsa"} {
		t.Run(name, func(t *testing.T) {
			c := cs[name]
			tk := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode())))
			hdr, claims := h.idClaims(t, tk.IDToken)
			wantAlg := c.IDTokenAlg
			if hdr.Algorithm != wantAlg || hdr.ExtraHeaders["typ"] != wire.IDTokenType {
				t.Errorf("ID token header alg %s typ %v, want %s JWT", hdr.Algorithm, hdr.ExtraHeaders["typ"], wantAlg)
			}
			cookie := b.claims()
			if claims.Issuer != h.cfg.URL || claims.Audience != c.ID || claims.AZP != c.ID || claims.Subject != cookie.Subject ||
				claims.Nonce != "n-456" || claims.SessionID != cookie.SessionID || claims.AuthTime != cookie.AuthTime ||
				!slices.Equal(claims.AMR, []string{"pwd"}) || claims.Username != "alice" || !slices.Equal(claims.Groups, []string{"admins"}) ||
				claims.Expiry <= claims.IssuedAt {
				t.Errorf("ID token claims %+v (cookie sub %s sid %s)", claims, cookie.Subject, cookie.SessionID)
			}
			if tk.TokenType != "Bearer" || tk.ExpiresIn != int64(h.cfg.AccessTTL/time.Second) || tk.Scope != "openid profile groups" {
				t.Errorf("token response %+v", tk)
			}
			r := b.userinfo(tk.AccessToken)
			var info map[string]any
			if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.body), &info) != nil ||
				info["sub"] != alice.ID || info["preferred_username"] != "alice" {
				t.Errorf("userinfo: %d %s", r.StatusCode, r.body)
			}
		})
	}

	// client_secret_post works as well as Basic.
	c := cs["conf"]
	code := codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode()))
	form := tokenForm(c, code)
	form.Set("client_id", c.ID)
	form.Set("client_secret", c.secret)
	if r := b.tokenRequest(form, "", ""); r.StatusCode != http.StatusOK {
		t.Errorf("client_secret_post: %d %s", r.StatusCode, r.body)
	}

	// offline_access: a refresh token that rotates; the ID token it brings
	// keeps sub and auth_time and has no nonce. Without it, none.
	if tk := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode()))); tk.RefreshToken != "" {
		t.Error("a refresh token without offline_access")
	}
	q := authParams(c)
	q.Set("scope", "openid profile offline_access")
	first := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+q.Encode())))
	_, firstClaims := h.idClaims(t, first.IDToken)
	h.clock.Advance(time.Minute)
	next := b.refresh(t, c, first.RefreshToken)
	_, nextClaims := h.idClaims(t, next.IDToken)
	if next.RefreshToken == first.RefreshToken || next.AccessToken == first.AccessToken || nextClaims.Subject != firstClaims.Subject ||
		nextClaims.AuthTime != firstClaims.AuthTime || nextClaims.Nonce != "" || nextClaims.IssuedAt <= firstClaims.IssuedAt || next.Scope != "openid profile offline_access" {
		t.Errorf("refreshed: %+v %+v, first %+v", next, nextClaims, firstClaims)
	}
	if r := b.userinfo(next.AccessToken); r.StatusCode != http.StatusOK {
		t.Errorf("userinfo with a refreshed token: %d", r.StatusCode)
	}
	b.refresh(t, c, next.RefreshToken)

	// Scope openid alone: no name, no groups.
	q = authParams(c)
	q.Set("scope", "openid")
	tk := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+q.Encode())))
	if _, claims := h.idClaims(t, tk.IDToken); claims.Username != "" || claims.Groups != nil {
		t.Errorf("scope openid gave %+v", claims)
	}
	if r := b.userinfo(tk.AccessToken); strings.Contains(r.body, "alice") || strings.Contains(r.body, "admins") {
		t.Errorf("userinfo for scope openid: %s", r.body)
	}
}

// TestProviderSignIn: a browser with no issuer session goes to the sign-in
// form and comes back to the client; prompt=login and max_age ask again and
// the code comes only after a fresh sign-in; a browser that keeps no
// cookies gets a page, not a loop.
func TestProviderSignIn(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true})
	h.createUser("alice", "correct horse battery")
	c := h.testClients("")["conf"]
	b := h.browser()

	follow := func(r *response) *response {
		t.Helper()
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("want a redirect, got %d\n%s", r.StatusCode, r.body)
		}
		loc := r.Header.Get("Location")
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		return b.get(u.RequestURI())
	}
	signInAndBack := func(authz *response, wantReauth bool) *response {
		t.Helper()
		loc := authz.Header.Get("Location")
		if authz.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") || strings.Contains(loc, "prompt=login") != wantReauth {
			t.Fatalf("authorize: %d to %q, want the sign-in form (prompt=login %v)", authz.StatusCode, loc, wantReauth)
		}
		u, _ := url.Parse(loc)
		returnTo := u.Query().Get("return_to")
		if !strings.HasPrefix(returnTo, h.cfg.URL+"/authorize/continue?") {
			t.Fatalf("return_to %q", returnTo)
		}
		form := b.get(loc)
		if form.StatusCode != http.StatusOK || hidden(form.body, "return_to") != returnTo {
			t.Fatalf("sign-in form: %d, return_to %q", form.StatusCode, hidden(form.body, "return_to"))
		}
		r := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"},
			"csrf_token": {hidden(form.body, "csrf_token")}, "return_to": {returnTo}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != returnTo {
			t.Fatalf("login: %d to %q, want %q", r.StatusCode, r.Header.Get("Location"), returnTo)
		}
		cont := follow(r)
		refresh := cont.Header.Get("Refresh")
		if cont.StatusCode != http.StatusOK || !strings.HasPrefix(refresh, "0; url=/authorize?") {
			t.Fatalf("continue page: %d, Refresh %q", cont.StatusCode, refresh)
		}
		return b.get(strings.TrimPrefix(refresh, "0; url="))
	}

	back := signInAndBack(b.get("/authorize?"+authParams(c).Encode()), false)
	codeFrom(t, c, back)
	firstAuth := b.claims().AuthTime

	// Signed in: no form at all.
	codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode()))

	// prompt=login: the form, then a code with a newer auth_time.
	h.clock.Advance(2 * time.Second)
	q := authParams(c)
	q.Set("prompt", "login")
	tk := b.redeem(t, c, codeFrom(t, c, signInAndBack(b.get("/authorize?"+q.Encode()), true)))
	if _, claims := h.idClaims(t, tk.IDToken); claims.AuthTime <= firstAuth {
		t.Errorf("prompt=login: auth_time %d, want after %d", claims.AuthTime, firstAuth)
	}

	// max_age: within it no form, beyond it the form.
	q = authParams(c)
	q.Set("max_age", "60")
	codeFrom(t, c, b.get("/authorize?"+q.Encode()))
	h.clock.Advance(61 * time.Second)
	codeFrom(t, c, signInAndBack(b.get("/authorize?"+q.Encode()), true))

	// A browser that drops the session cookie after signing in: a page
	// after two rounds, never a loop.
	nb := h.browser()
	r := nb.get("/authorize?" + authParams(c).Encode())
	for range 2 {
		loc := r.Header.Get("Location")
		u, _ := url.Parse(loc)
		r = nb.get("/authorize?" + strings.SplitN(u.Query().Get("return_to"), "?", 2)[1])
	}
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "cookies") {
		t.Errorf("third round without cookies: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	// End-session with an id_token_hint instead of client_id, expired or not.
	hint := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode()))).IDToken
	h.clock.Advance(time.Hour)
	r = b.get("/end-session?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {c.PostLogoutRedirectURIs[0]}}.Encode())
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/logout?return_to=") {
		t.Errorf("end-session with id_token_hint: %d to %q\n%s", r.StatusCode, loc, r.body)
	}

	// End-session with a registered URI goes to the sign-out confirmation.
	r = b.get("/end-session?" + url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {c.PostLogoutRedirectURIs[0]}, "state": {"x"}}.Encode())
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/logout?return_to=") {
		t.Errorf("end-session: %d to %q", r.StatusCode, loc)
	}
}
