package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

const alicePW = "correct horse battery"

// TestJourney walks SPEC.md's main journey with a cookie jar: sign-up, the
// owner's page, another user's page, the app, API 401s, expiry and refresh,
// logout.
func TestJourney(t *testing.T) {
	s := newStack(t, stackOptions{accessTTL: "2s", leeway: "0s"})
	b := newBrowser(t)
	alice := s.userURL("alice")

	// Anonymous navigation: 303 to the issuer's /refresh with this URL.
	r := b.navigate(alice)
	wantLoc := s.issuerURL + "/refresh?return_to=" + url.QueryEscape(alice)
	if r.status != http.StatusSeeOther || r.location != wantLoc {
		t.Fatalf("anonymous navigation: %d %q, want 303 %q", r.status, r.location, wantLoc)
	}
	// /refresh without a session sends the browser to the login form, keeping return_to.
	r = b.navigate(r.location)
	if r.status != http.StatusSeeOther || r.location != "/login?return_to="+url.QueryEscape(alice) {
		t.Fatalf("/refresh without session: %d %q", r.status, r.location)
	}
	// An API request gets 401 JSON, not a redirect.
	r = b.api(http.MethodGet, alice+"api/thing")
	if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="canopy"`) {
		t.Fatalf("anonymous API: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("401 body is not JSON: %q", r.body)
	}
	if body["error"] != "unauthenticated" || body["reason"] != "missing" ||
		body["login_url"] != s.issuerURL+"/login?return_to="+url.QueryEscape(alice+"api/thing") ||
		body["refresh_url"] != s.issuerURL+"/refresh" {
		t.Fatalf("401 body = %v", body)
	}

	// Sign up as alice: back on alice's page, greeted by name.
	r = s.signUp(t, b, "alice", alicePW, alice)
	if r.status != http.StatusSeeOther || r.location != alice {
		t.Fatalf("sign-up: %d %q\n%s", r.status, r.location, r.body)
	}
	r = b.navigate(alice)
	if r.status != http.StatusOK || !strings.Contains(r.body, "alice") {
		t.Fatalf("owner's page: %d\n%s", r.status, r.body)
	}
	access := b.cookie(alice, "canopy")
	refresh := b.cookie(s.issuerURL, "canopy-refresh")
	if access == nil || refresh == nil {
		t.Fatal("cookies missing after sign-up")
	}
	if b.cookie(alice, "canopy-refresh") != nil {
		t.Fatal("the refresh cookie reached a relying host")
	}
	if amr := checkToken(t, s, access.Value, "alice")["amr"]; !reflect.DeepEqual(amr, []any{"pwd"}) {
		t.Fatalf("a sign-up's amr = %v, want [pwd]", amr)
	}

	// Another user's page: 403; the app: greeted with no login.
	r = b.navigate(s.userURL("bob"))
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "bob") {
		t.Fatalf("bob's page as alice: %d\n%s", r.status, r.body)
	}
	// The way out: sign in as someone else, and come back here.
	switchUser := s.issuerURL + "/login?prompt=login&amp;return_to=" + url.QueryEscape(s.userURL("bob"))
	if !strings.Contains(r.body, `href="`+switchUser+`"`) || !strings.Contains(r.body, "Sign in as someone else") {
		t.Fatalf("the 403 page has no link to sign in as someone else (%s):\n%s", switchUser, r.body)
	}
	r = b.navigate(s.appURL())
	if r.status != http.StatusOK || !strings.Contains(r.body, "alice") {
		t.Fatalf("app as alice: %d\n%s", r.status, r.body)
	}
	// An invalid username label is 404.
	if r = b.navigate(s.userURL("-bad-")); r.status != http.StatusNotFound {
		t.Fatalf("invalid label: %d", r.status)
	}

	// Wait for the 2 s token to expire: the page sends the browser through
	// /refresh, which rotates the refresh token and sets a new access cookie.
	time.Sleep(2500 * time.Millisecond)
	r = b.navigate(alice)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, s.issuerURL+"/refresh?") {
		t.Fatalf("expired token: %d %q", r.status, r.location)
	}
	r = b.navigate(r.location)
	if r.status != http.StatusSeeOther || r.location != alice {
		t.Fatalf("/refresh: %d %q", r.status, r.location)
	}
	if c := b.cookie(alice, "canopy"); c == nil || c.Value == access.Value {
		t.Fatal("refresh did not set a new access cookie")
	}
	if c := b.cookie(s.issuerURL, "canopy-refresh"); c == nil || c.Value == refresh.Value {
		t.Fatal("refresh did not rotate the refresh cookie")
	}
	if r = b.navigate(alice); r.status != http.StatusOK {
		t.Fatalf("page after refresh: %d", r.status)
	}

	// Logout through the confirmation form; refresh no longer works.
	page := b.navigate(s.issuerURL + "/logout?return_to=" + url.QueryEscape(alice))
	if page.status != http.StatusOK {
		t.Fatalf("GET /logout: %d", page.status)
	}
	r = b.post(s.issuerURL+"/logout", url.Values{"csrf_token": {csrf(t, page.body)}, "return_to": {alice}}, s.issuerURL)
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST /logout: %d\n%s", r.status, r.body)
	}
	if b.cookie(alice, "canopy") != nil || b.cookie(s.issuerURL, "canopy-refresh") != nil {
		t.Fatal("logout left cookies behind")
	}
	// Even the old refresh token, replayed, no longer works.
	b2 := newBrowser(t)
	iu, _ := url.Parse(s.issuerURL)
	b2.jar.SetCookies(iu, []*http.Cookie{{Name: "canopy-refresh", Value: refresh.Value}})
	r = b2.navigate(s.issuerURL + "/refresh?return_to=" + url.QueryEscape(alice))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login") {
		t.Fatalf("refresh after logout: %d %q", r.status, r.location)
	}

	// Log in again through the login form.
	r = s.signIn(t, b, "alice", alicePW, alice)
	if r.status != http.StatusSeeOther || r.location != alice {
		t.Fatalf("login: %d %q", r.status, r.location)
	}
	if r = b.navigate(alice); r.status != http.StatusOK {
		t.Fatalf("page after login: %d", r.status)
	}

	// No secret in any log line: not the password, an access token, or a refresh token.
	secrets := map[string]string{"password": alicePW, "access token": access.Value, "refresh token": refresh.Value}
	if c := b.cookie(s.issuerURL, "canopy-refresh"); c != nil {
		secrets["current refresh token"] = c.Value
	}
	for _, p := range []*proc{s.issuer, s.users, s.app} {
		out := p.Output()
		for what, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("the %s log contains the %s", p.name, what)
			}
		}
	}
	if !strings.Contains(s.issuer.Output(), "path=/login") || !strings.Contains(s.issuer.Output(), " id=") {
		t.Error("the issuer does not log one line per request with a request id")
	}
}

// checkToken verifies the access token with go-jose against the published
// JWKS alone and checks its header and claims against SPEC.md exactly: the
// registered claims, auth_time, amr, and groups only when the user has any.
// It returns the claims for further checks.
func checkToken(t *testing.T, s *stack, token, user string) map[string]any {
	t.Helper()
	resp, err := localhost.Client(5 * time.Second).Get(s.issuerURL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	for _, priv := range []string{`"d"`, `"p"`, `"q"`, `"k"`} {
		if strings.Contains(string(raw), priv+":") {
			t.Fatalf("JWKS has a private member %s: %s", priv, raw)
		}
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify against the JWKS: %v", err)
	}
	hdrRaw, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var hdr map[string]any
	if err := json.Unmarshal(hdrRaw, &hdr); err != nil {
		t.Fatal(err)
	}
	if len(hdr) != 3 || hdr["alg"] != "EdDSA" || hdr["typ"] != "at+jwt" || hdr["kid"] != keys[0].KeyID {
		t.Fatalf("header = %s", hdrRaw)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range claims {
		names = append(names, k)
	}
	sort.Strings(names)
	want := []string{"amr", "aud", "auth_time", "exp", "iat", "iss", "jti", "nbf", "preferred_username", "session_exp", "sid", "sub"}
	if g, ok := claims["groups"]; ok {
		want = append(want, "groups")
		sort.Strings(want)
		list, _ := g.([]any)
		var groups []string
		for _, v := range list {
			if s, ok := v.(string); ok && s != "" {
				groups = append(groups, s)
			}
		}
		if len(groups) == 0 || len(groups) != len(list) || !sort.StringsAreSorted(groups) {
			t.Fatalf("groups %v: want a non-empty sorted list of names, or no claim", g)
		}
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("claims %v, want %v", names, want)
	}
	if claims["iss"] != s.issuerURL || claims["aud"] != s.domain || claims["preferred_username"] != user {
		t.Fatalf("claims = %s", payload)
	}
	for _, k := range []string{"sub", "sid", "jti"} {
		if v, ok := claims[k].(string); !ok || v == "" {
			t.Fatalf("%s is not a non-empty string: %v", k, claims[k])
		}
	}
	amr, _ := claims["amr"].([]any)
	if len(amr) == 0 {
		t.Fatalf("amr %v is not a non-empty list", claims["amr"])
	}
	for _, m := range amr {
		if m != "pwd" && m != "otp" && m != "hwk" {
			t.Fatalf("amr %v: %v is not a method Canopy uses", amr, m)
		}
	}
	authTime, ok1 := claims["auth_time"].(float64)
	iat, ok2 := claims["iat"].(float64)
	if !ok1 || !ok2 || authTime <= 0 || authTime > iat || authTime != float64(int64(authTime)) {
		t.Fatalf("auth_time %v must be an integer no later than iat %v", claims["auth_time"], claims["iat"])
	}
	if sx, ok := claims["session_exp"].(float64); !ok || sx != float64(int64(sx)) || sx < claims["exp"].(float64) {
		t.Fatalf("session_exp %v must be an integer no earlier than exp %v", claims["session_exp"], claims["exp"])
	}
	jti, _ := claims["jti"].(string)
	if n, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(n) < 16 {
		t.Fatalf("jti %q is not 128 random bits", jti)
	}
	if len(token) >= 1024 {
		t.Fatalf("token is %d bytes, want under 1 KiB", len(token))
	}
	return claims
}
