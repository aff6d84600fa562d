package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// providerRow is one row of testdata/oidc/hostile.json.
type providerRow struct {
	Name             string             `json:"name"`
	Kind             string             `json:"kind"`
	Client           string             `json:"client"`
	Params           map[string]*string `json:"params"`
	Form             map[string]*string `json:"form"`
	RawQuerySuffix   string             `json:"raw_query_suffix"`
	SignedOut        bool               `json:"signed_out"`
	AccessCookieOnly bool               `json:"access_cookie_only"`
	NoPKCE           bool               `json:"no_pkce"`
	Auth             string             `json:"auth"`
	Present          string             `json:"present"`
	Hint             string             `json:"hint"`
	Case             string             `json:"case"`
	Before           struct {
		Replay       bool   `json:"replay"`
		Advance      string `json:"advance"`
		RemoveClient bool   `json:"remove_client"`
		Logout       bool   `json:"logout"`
	} `json:"before"`
	Want struct {
		Page              bool   `json:"page"`
		Error             string `json:"error"`
		Login             bool   `json:"login"`
		Status            int    `json:"status"`
		FirstTokenRevoked bool   `json:"first_token_revoked"`
		Refused           bool   `json:"refused"`
	} `json:"want"`
}

func loadHostile(t *testing.T) []providerRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "oidc", "hostile.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Rows []providerRow `json:"rows"`
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	return table.Rows
}

func apply(v url.Values, over map[string]*string) {
	for k, p := range over {
		if p == nil {
			v.Del(k)
		} else {
			v.Set(k, *p)
		}
	}
}

// TestProviderHostile runs the hostile table against one issuer: each row
// gets its own clients and its own signed-in browser.
func TestProviderHostile(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true})
	h.createUser("alice", "correct horse battery")
	rows := loadHostile(t)
	if len(rows) < 50 {
		t.Fatalf("only %d rows", len(rows))
	}
	for i, row := range rows {
		t.Run(row.Name, func(t *testing.T) {
			cs := h.testClients(fmt.Sprintf("-%d", i))
			c := cs[row.Client]
			b := h.browser()
			if !row.SignedOut {
				b.login("alice", "correct horse battery")
			}
			if row.AccessCookieOnly {
				delete(b.cookies, h.srv.sessionCookie())
			}
			switch row.Kind {
			case "authorize":
				hostileAuthorize(t, h, b, c, row)
			case "token":
				hostileToken(t, h, b, cs, c, row)
			case "userinfo":
				tk := hostileSetup(t, h, b, c, row)
				present := tk.AccessToken
				switch row.Present {
				case "id_token":
					present = tk.IDToken
				case "none":
					present = ""
				}
				if r := b.userinfo(present); r.StatusCode != row.Want.Status || !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("userinfo: %d (%s), want %d with WWW-Authenticate Bearer\n%s", r.StatusCode, r.Header.Get("WWW-Authenticate"), row.Want.Status, r.body)
				}
			case "end_session":
				q := url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {c.PostLogoutRedirectURIs[0]}, "state": {"s"}}
				if row.Hint != "" {
					q.Set("id_token_hint", hostileHint(t, h, b, cs, row.Hint))
				}
				apply(q, row.Params)
				r := b.get("/end-session?" + q.Encode())
				if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
					t.Errorf("end-session: %d to %q, want an error page\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
				}
			case "refresh":
				hostileRefresh(t, h, b, cs, c, row)
			case "relying":
				tk := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode())))
				present := tk.AccessToken
				if row.Present == "id_token" {
					present = tk.IDToken
				}
				if _, err := h.relyingVerifier(t).Verify(t.Context(), present); err == nil {
					t.Errorf("a relying service accepted the client's %s", row.Present)
				}
				// The browser's own cookie token still passes: the verifier works.
				if _, err := h.relyingVerifier(t).Verify(t.Context(), b.cookies[h.cfg.Cookies().Access]); err != nil {
					t.Errorf("the cookie token is refused too: %v", err)
				}
			default:
				t.Fatalf("unknown kind %q", row.Kind)
			}
		})
	}
}

func hostileAuthorize(t *testing.T, h *harness, b *browser, c rp, row providerRow) {
	q := authParams(c)
	apply(q, row.Params)
	r := b.get("/authorize?" + q.Encode() + row.RawQuerySuffix)
	loc := r.Header.Get("Location")
	switch {
	case row.Want.Page:
		if r.StatusCode != http.StatusBadRequest || loc != "" || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("want an error page, got %d to %q", r.StatusCode, loc)
		}
	case row.Want.Login:
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") || !strings.Contains(loc, "prompt=login") {
			t.Errorf("want the sign-in form, got %d to %q", r.StatusCode, loc)
		}
	default:
		u, err := url.Parse(loc)
		if r.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc, c.RedirectURIs[0]+"?") {
			t.Fatalf("want an error redirect to the client, got %d to %q\n%s", r.StatusCode, loc, r.body)
		}
		got := u.Query()
		if got.Get("error") != row.Want.Error || got.Get("code") != "" || got.Get("state") != "st-123" || got.Get("iss") != h.cfg.URL {
			t.Errorf("redirect %s: want error=%s with state and iss, no code", loc, row.Want.Error)
		}
	}
}

// hostileSetup runs a valid flow up to the tokens, then row.Before.
func hostileSetup(t *testing.T, h *harness, b *browser, c rp, row providerRow) tokens {
	tk := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode())))
	hostileBefore(t, h, b, c, row)
	return tk
}

func hostileBefore(t *testing.T, h *harness, b *browser, c rp, row providerRow) {
	if row.Before.Advance != "" {
		d, err := time.ParseDuration(row.Before.Advance)
		if err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(d)
	}
	if row.Before.RemoveClient {
		if err := h.store.RemoveClient(t.Context(), c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if row.Before.Logout {
		if r := b.post("/logout", url.Values{"csrf_token": {b.token()}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", r.StatusCode)
		}
	}
}

func hostileToken(t *testing.T, h *harness, b *browser, cs map[string]rp, c rp, row providerRow) {
	q := authParams(c)
	if row.NoPKCE {
		q.Del("code_challenge")
		q.Del("code_challenge_method")
	}
	code := codeFrom(t, c, b.get("/authorize?"+q.Encode()))
	var first tokens
	if row.Before.Replay {
		first = b.redeem(t, c, code)
		if r := b.userinfo(first.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("userinfo before the replay: %d", r.StatusCode)
		}
	}
	hostileBefore(t, h, b, c, row)
	form := tokenForm(c, code)
	if row.NoPKCE {
		form.Del("code_verifier")
	}
	apply(form, row.Form)
	id, secret := "", ""
	if !c.Public {
		id, secret = c.ID, c.secret
	}
	switch row.Auth {
	case "basic_wrong":
		secret += "x"
	case "post_wrong":
		id = ""
		form.Set("client_id", c.ID)
		form.Set("client_secret", "wrong")
	case "none":
		id = ""
		form.Set("client_id", c.ID)
	case "basic_and_post":
		form.Set("client_secret", c.secret)
	case "other_client":
		id, secret = cs["eddsa"].ID, cs["eddsa"].secret
	}
	r := b.tokenRequest(form, id, secret)
	var e struct {
		Error string `json:"error"`
	}
	if r.StatusCode != row.Want.Status || json.Unmarshal([]byte(r.body), &e) != nil || e.Error != row.Want.Error {
		t.Fatalf("token: %d %s, want %d %s", r.StatusCode, r.body, row.Want.Status, row.Want.Error)
	}
	if strings.Contains(r.body, "access_token") || strings.Contains(r.body, "id_token") {
		t.Errorf("an error response carries a token: %s", r.body)
	}
	if row.Want.Status == http.StatusUnauthorized && id != "" && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("401 after Basic without WWW-Authenticate: Basic")
	}
	if row.Want.FirstTokenRevoked {
		if r := b.userinfo(first.AccessToken); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("the replayed code's first access token still works: %d", r.StatusCode)
		}
	}
}

// hostileHint makes an id_token_hint that must not pass.
func hostileHint(t *testing.T, h *harness, b *browser, cs map[string]rp, kind string) string {
	switch kind {
	case "other_client":
		o := cs["eddsa"]
		return b.redeem(t, o, codeFrom(t, o, b.get("/authorize?"+authParams(o).Encode()))).IDToken
	case "access_cookie":
		return b.cookies[h.cfg.Cookies().Access]
	case "tampered":
		c := cs["conf"]
		tok := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode()))).IDToken
		parts := strings.Split(tok, ".")
		sig := []byte(parts[2])
		sig[10] ^= 1
		return parts[0] + "." + parts[1] + "." + string(sig)
	}
	t.Fatalf("unknown hint %q", kind)
	return ""
}

// hostileRefresh gets a refresh token (scope offline_access), does what
// row.Case says, then presents a refresh token.
func hostileRefresh(t *testing.T, h *harness, b *browser, cs map[string]rp, c rp, row providerRow) {
	q := authParams(c)
	q.Set("scope", "openid offline_access")
	code := codeFrom(t, c, b.get("/authorize?"+q.Encode()))
	tk := b.redeem(t, c, code)
	if tk.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}}
	id, secret := c.ID, c.secret
	var later tokens
	switch row.Case {
	case "reuse":
		later = b.refresh(t, c, tk.RefreshToken)
	case "other_client":
		id, secret = cs["eddsa"].ID, cs["eddsa"].secret
	case "logout":
		row.Before.Logout = true
	case "remove_client":
		row.Before.RemoveClient = true
	case "broader_scope":
		form.Set("scope", "openid groups")
	case "code_replay":
		if r := b.tokenRequest(tokenForm(c, code), c.ID, c.secret); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("code replay: %d", r.StatusCode)
		}
	case "no_secret":
		id, secret = "", ""
		form.Set("client_id", c.ID)
	default:
		t.Fatalf("unknown case %q", row.Case)
	}
	hostileBefore(t, h, b, c, row)
	r := b.tokenRequest(form, id, secret)
	var e struct {
		Error string `json:"error"`
	}
	if r.StatusCode != row.Want.Status || json.Unmarshal([]byte(r.body), &e) != nil || e.Error != row.Want.Error || strings.Contains(r.body, "access_token") {
		t.Fatalf("refresh: %d %s, want %d %s", r.StatusCode, r.body, row.Want.Status, row.Want.Error)
	}
	if row.Case == "reuse" {
		// The whole family ends: the successor and its access token too.
		if r := b.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {later.RefreshToken}}, c.ID, c.secret); r.StatusCode != http.StatusBadRequest {
			t.Errorf("the successor of a reused refresh token still works: %d %s", r.StatusCode, r.body)
		}
		if r := b.userinfo(later.AccessToken); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("an access token of the revoked family still works: %d", r.StatusCode)
		}
	}
}
