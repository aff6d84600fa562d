package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/issuer/clients"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// testVerifier is an RFC 7636 appendix B verifier; testChallenge its S256.
const (
	testVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	testChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// rp is a registered client as a test uses it.
type rp struct {
	store.Client
	secret string
}

// addClient registers a client through the package the CLI uses.
func (h *harness) addClient(spec clients.Spec) rp {
	h.t.Helper()
	c, secret, err := clients.New(spec, h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.CreateClient(h.t.(*testing.T).Context(), c); err != nil {
		h.t.Fatal(err)
	}
	return rp{Client: c, secret: secret}
}

// testClients registers the clients the provider tests use, with names
// made unique by suffix.
func (h *harness) testClients(suffix string) map[string]rp {
	return map[string]rp{
		"conf": h.addClient(clients.Spec{Name: "conf" + suffix, RedirectURIs: []string{"https://conf.example.com/cb", "http://127.0.0.1:9999/conf/cb"},
			PostLogoutRedirectURIs: []string{"https://conf.example.com/bye"}}),
		"pub": h.addClient(clients.Spec{Name: "pub" + suffix, Public: true, RedirectURIs: []string{"http://127.0.0.1:9999/pub/cb"},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:9999/pub/bye"}}),
		"grouped": h.addClient(clients.Spec{Name: "grouped" + suffix, RedirectURIs: []string{"https://grouped.example.com/cb"}, RequireGroups: []string{"admins"}}),
		"eddsa":   h.addClient(clients.Spec{Name: "eddsa" + suffix, RedirectURIs: []string{"https://eddsa.example.com/cb"}, IDTokenAlg: "EdDSA"}),
	}
}

// authParams is a valid authorization request of c with PKCE.
func authParams(c rp) url.Values {
	return url.Values{
		"client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "response_type": {"code"},
		"scope": {"openid profile groups"}, "state": {"st-123"}, "nonce": {"n-456"},
		"code_challenge": {testChallenge}, "code_challenge_method": {"S256"},
	}
}

// codeFrom reads the code from an authorize response that must redirect
// to c's redirect URI.
func codeFrom(t *testing.T, c rp, r *response) string {
	t.Helper()
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, c.RedirectURIs[0]+"?") {
		t.Fatalf("authorize: %d to %q, want a redirect to %s\n%s", r.StatusCode, loc, c.RedirectURIs[0], r.body)
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	if q.Get("error") != "" || q.Get("code") == "" || q.Get("state") != "st-123" {
		t.Fatalf("authorize redirect %s", loc)
	}
	return q.Get("code")
}

// tokenForm is a valid token request for code of c.
func tokenForm(c rp, code string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {testVerifier}}
	if c.Public {
		f.Set("client_id", c.ID)
	}
	return f
}

// tokenRequest posts form to /token, with HTTP Basic for a confidential
// client unless auth says otherwise.
func (b *browser) tokenRequest(form url.Values, basicID, basicSecret string) *response {
	h := http.Header{}
	if basicID != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(basicID)+":"+url.QueryEscape(basicSecret))))
	}
	none := ""
	return b.do(request{method: http.MethodPost, target: "/token", form: form, header: h, cookies: &none})
}

// tokens is a successful token response.
type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
}

func (b *browser) redeem(t *testing.T, c rp, code string) tokens {
	t.Helper()
	id, secret := "", ""
	if !c.Public {
		id, secret = c.ID, c.secret
	}
	r := b.tokenRequest(tokenForm(c, code), id, secret)
	var tk tokens
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.body), &tk) != nil || tk.AccessToken == "" || tk.IDToken == "" {
		t.Fatalf("token: %d %s", r.StatusCode, r.body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token response Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	return tk
}

func (b *browser) userinfo(tok string) *response {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	none := ""
	return b.do(request{target: "/userinfo", header: h, cookies: &none})
}

// relyingVerifier verifies tokens as a relying service of this issuer does:
// the issuer's published key set, its URL and the cookie domain.
func (h *harness) relyingVerifier(t *testing.T) *sso.Verifier {
	t.Helper()
	body, _ := h.srv.keys.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	ks, err := sso.NewStaticKeySet(set.Keys...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sso.NewVerifier(ks, sso.Config{Issuer: h.cfg.URL, Audience: h.cfg.CookieDomain, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// refresh uses a refresh token of c and returns the new tokens.
func (b *browser) refresh(t *testing.T, c rp, refresh string) tokens {
	t.Helper()
	r := b.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, c.ID, c.secret)
	var tk tokens
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.body), &tk) != nil || tk.AccessToken == "" || tk.IDToken == "" || tk.RefreshToken == "" {
		t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
	}
	return tk
}
