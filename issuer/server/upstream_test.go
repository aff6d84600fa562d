package server

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/oidctest"
	"github.com/canopy-sso/canopy/issuer/store"
)

// These tests sign in at a real OpenID provider (zitadel/oidc's op package
// with its example storage and login page, issuer/oidctest) on loopback.

const providerPassword = "correct horse"

// fedHarness is the issuer with the provider "corp" (and "dead", whose
// issuer refuses connections).
type fedHarness struct {
	*harness
	op      *oidctest.Provider
	metrics *metrics.Issuer
}

// newFedHarness configures corp with the extra --idp keys extra.
func newFedHarness(t *testing.T, extra string, o options) *fedHarness {
	t.Helper()
	op := oidctest.Start(t, oidctest.Options{Users: "../../testdata/upstream/users.json", Delay: 2 * time.Second,
		Groups: map[string][]string{"sub-alice": {"eng", "admins", "Bad Name!"}, "sub-carol": {"ops"}}})
	secret := filepath.Join(t.TempDir(), "corp.secret")
	if err := os.WriteFile(secret, []byte(op.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	m := metrics.NewIssuer()
	o.metrics = m
	if o.upstreamWait == 0 {
		o.upstreamWait = 500 * time.Millisecond
	}
	inner := o.mutate
	o.mutate = func(c *config.Config) {
		for _, v := range []string{
			"name=corp,display=Corp SSO,issuer=" + op.URL + ",client-id=" + op.ClientID + ",client-secret-file=" + secret + extra,
			"name=dead,issuer=" + dead + ",client-id=x,client-secret-file=" + secret,
		} {
			if err := c.IDPs.Set(v); err != nil || c.IDPs.Err() != nil {
				t.Fatal(err, c.IDPs.Err())
			}
		}
		if err := c.LoadSecrets(); err != nil {
			t.Fatal(err)
		}
		if inner != nil {
			inner(c)
		}
	}
	h := newHarness(t, o)
	op.Register(h.cfg.URL + "/login/upstream/corp/callback")
	return &fedHarness{harness: h, op: op, metrics: m}
}

// authorize starts a sign-in at corp and returns the provider's URL.
func (f *fedHarness) authorize(b *browser, query string) string {
	f.t.Helper()
	r := b.get("/login/upstream/corp" + query)
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, f.op.URL) {
		f.t.Fatalf("start: %d to %q, want 303 to the provider; body:\n%s", r.StatusCode, loc, r.body)
	}
	return loc
}

// atProvider signs in as user on the provider's own page and returns the
// callback's path and query on the issuer.
func (f *fedHarness) atProvider(authURL, user string) string {
	f.t.Helper()
	cb, err := f.op.Login(authURL, user, providerPassword)
	if err != nil {
		f.t.Fatal(err)
	}
	u, err := url.Parse(cb)
	if err != nil || u.Host != f.host || u.Path != "/login/upstream/corp/callback" {
		f.t.Fatalf("provider sent the browser to %q, want the issuer's callback", cb)
	}
	return u.RequestURI()
}

// signUp posts the username choice of a signup page.
func (f *fedHarness) signUp(b *browser, page *response, name string) *response {
	f.t.Helper()
	pending := hidden(page.body, "pending")
	if pending == "" {
		f.t.Fatalf("no username choice (status %d):\n%s", page.StatusCode, page.body)
	}
	return b.do(request{method: http.MethodPost, target: "/login/upstream/signup",
		form:   url.Values{"pending": {pending}, "username": {name}},
		header: http.Header{"Origin": {f.origin()}, "Sec-Fetch-Site": {"same-origin"}}})
}

func (f *fedHarness) outcome(idp, outcome string) float64 {
	f.t.Helper()
	families, err := f.metrics.Registry.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != "canopy_issuer_upstream_logins_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["idp"] == idp && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestUpstreamSignUpAndSignIn: a stranger the provider vouches for chooses
// a username (prefilled), lands on return_to with a federated token; the
// same person later signs in directly; refresh keeps the provider's facts
// until max-session, then sends the browser to sign in again.
func TestUpstreamSignUpAndSignIn(t *testing.T) {
	f := newFedHarness(t, ",signup=open,groups-claim=groups,map-groups=eng:staff,trust-amr=true,max-session=1h", options{})
	start := f.clock.Now()
	returnTo := "http://alice." + f.cfg.CookieDomain + ":" + f.port + "/page"
	b := f.browser()
	auth := f.authorize(b, "?return_to="+url.QueryEscape(returnTo))
	for _, want := range []string{"code_challenge_method=S256", "response_mode=query", "nonce=", "state=", "scope=openid+email+profile"} {
		if !strings.Contains(auth, want) {
			t.Errorf("authorization URL %q lacks %q", auth, want)
		}
	}
	cb := f.atProvider(auth, "alice")
	f.clock.Advance(time.Minute) // the provider's auth_time is now in the past
	page := b.get(cb)
	if page.StatusCode != http.StatusOK || hidden(page.body, "pending") == "" {
		t.Fatalf("callback: %d, want the username choice:\n%s", page.StatusCode, page.body)
	}
	if !strings.Contains(page.body, `value="alice"`) {
		t.Fatalf("username not prefilled with alice:\n%s", page.body)
	}
	// The choice must not depend on the Strict CSRF cookie the cross-site
	// return withholds: this browser never had one.
	delete(b.cookies, f.cfg.Cookies().CSRF)
	r := f.signUp(b, page, "alice")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != returnTo {
		t.Fatalf("sign-up: %d to %q, want 303 to %s:\n%s", r.StatusCode, r.Header.Get("Location"), returnTo, r.body)
	}
	cl := b.claims()
	if !slices.Equal(cl.AMR, []string{"fed", "pwd"}) || string(cl.Raw["idp"]) != `"corp"` {
		t.Fatalf("amr %q idp %s, want [fed pwd] and corp", cl.AMR, cl.Raw["idp"])
	}
	// eng is mapped to the local staff; admins only ever as corp:admins;
	// "Bad Name!" is no group name and is left out.
	if !slices.Equal(cl.Groups, []string{"corp:admins", "staff"}) {
		t.Fatalf("groups %q, want [corp:admins staff]", cl.Groups)
	}
	if cl.AuthTime < start.Unix()-5 || cl.AuthTime >= f.clock.Now().Unix() {
		t.Fatalf("auth_time %d is not the provider's (between %d and %d)", cl.AuthTime, start.Unix()-5, f.clock.Now().Unix())
	}
	// A second post of the same form creates nothing more.
	if r := f.signUp(b, page, "alice2"); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("second post: %d, want 400", r.StatusCode)
	}
	if _, err := f.store.UserByName(context.Background(), "alice2"); err == nil {
		t.Fatal("the replayed sign-up form made a user")
	}
	// A known subject signs in directly.
	b2 := f.browser()
	r = b2.get(f.atProvider(f.authorize(b2, "?return_to="+url.QueryEscape(returnTo)), "alice"))
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != returnTo {
		t.Fatalf("second sign-in: %d to %q:\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	if b2.claims().Subject != cl.Subject {
		t.Fatal("the second sign-in is another user")
	}
	// Refresh keeps idp and the provider's groups.
	f.clock.Advance(10 * time.Minute)
	if r := b.get("/refresh?return_to=" + url.QueryEscape(returnTo)); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != returnTo {
		t.Fatalf("refresh: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if cl := b.claims(); string(cl.Raw["idp"]) != `"corp"` || !slices.Equal(cl.Groups, []string{"corp:admins", "staff"}) {
		t.Fatalf("refreshed token lost the provider's facts: idp %s groups %q", cl.Raw["idp"], cl.Groups)
	}
	// Past max-session the refresh refuses and the browser signs in again.
	f.clock.Advance(time.Hour)
	if r := b.get("/refresh?return_to=" + url.QueryEscape(returnTo)); r.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(r.Header.Get("Location"), "/login?") {
		t.Fatalf("refresh past max-session: %d to %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
	}
	if got := f.outcome("corp", metrics.UpstreamSuccess); got != 2 {
		t.Fatalf("success counted %v times, want 2", got)
	}
}

// TestUpstreamSignupNameRules: the prefilled name is valid and free; a
// reserved, taken or invalid choice is refused with the form again.
func TestUpstreamSignupNameRules(t *testing.T) {
	f := newFedHarness(t, ",signup=open", options{})
	f.createUser("mallory-m", "pw-pw-pw-pw-pw")
	// A deleted user's name stays taken: it is never suggested.
	gone := f.createUser("mallory-m-2", "pw-pw-pw-pw-pw")
	if err := f.store.DeleteUser(context.Background(), gone.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	page := b.get(f.atProvider(f.authorize(b, ""), "mallory.M")) // preferred_username "mallory.M": taken after cleaning
	if !strings.Contains(page.body, `value="mallory-m-3"`) {
		t.Fatalf("want mallory-m-3 prefilled (mallory-m taken, mallory-m-2 a deleted user's):\n%s", page.body)
	}
	for name, want := range map[string]int{"admin": http.StatusBadRequest, "mallory-m": http.StatusConflict,
		"mallory-m-2": http.StatusConflict, "-x-": http.StatusBadRequest} {
		if r := f.signUp(b, page, name); r.StatusCode != want {
			t.Errorf("username %q: %d, want %d", name, r.StatusCode, want)
		}
	}
	// root's preferred_username is reserved: the email's local part is used.
	b2 := f.browser()
	page = b2.get(f.atProvider(f.authorize(b2, ""), "root"))
	if !strings.Contains(page.body, `value="admin-2"`) && !strings.Contains(page.body, `value="root-2"`) {
		// root and admin are reserved; the numbered form of either is valid and free.
		t.Fatalf("want a numbered free name prefilled:\n%s", page.body)
	}
	// A cross-site post is refused.
	r := b.do(request{method: http.MethodPost, target: "/login/upstream/signup",
		form:   url.Values{"pending": {hidden(page.body, "pending")}, "username": {"eve"}},
		header: http.Header{"Origin": {"http://evil.localhost"}, "Sec-Fetch-Site": {"cross-site"}}})
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("cross-site sign-up post: %d, want 400", r.StatusCode)
	}
}

// TestUpstreamClosedSignupAndAdminLink: with sign-up closed, an unknown
// subject is refused with its subject named; once an administrator linked
// it, it signs in.
func TestUpstreamClosedSignupAndAdminLink(t *testing.T) {
	f := newFedHarness(t, "", options{})
	b := f.browser()
	r := b.get(f.atProvider(f.authorize(b, ""), "carol"))
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "--subject sub-carol") {
		t.Fatalf("closed sign-up: %d:\n%s", r.StatusCode, r.body)
	}
	u := f.createUser("carol", "pw-pw-pw-pw-pw")
	if err := f.store.LinkIdentity(context.Background(), store.Identity{Issuer: f.op.URL, Subject: "sub-carol", UserID: u.ID,
		Provider: "corp", CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	r = b.get(f.atProvider(f.authorize(b, ""), "carol"))
	if r.StatusCode != http.StatusSeeOther || b.claims().Subject != u.ID {
		t.Fatalf("linked sign-in: %d:\n%s", r.StatusCode, r.body)
	}
	if cl := b.claims(); !slices.Equal(cl.AMR, []string{"fed"}) || len(cl.Groups) != 0 {
		t.Fatalf("without trust-amr and groups-claim: amr %q groups %q, want [fed] and none", cl.AMR, cl.Groups)
	}
}

// TestUpstreamAccountLinkUnlink: a password user links a provider from the
// account page with the password typed again, and unlinks it; a user
// whose only way in is the provider cannot unlink it.
func TestUpstreamAccountLinkUnlink(t *testing.T) {
	f := newFedHarness(t, ",signup=open", options{})
	bob := f.createUser("bob", "pw-pw-pw-pw-pw")
	b := f.browser()
	b.login("bob", "pw-pw-pw-pw-pw")
	acct := b.get("/")
	if !strings.Contains(acct.body, "Link Corp SSO") {
		t.Fatalf("account page has no link button:\n%s", acct.body)
	}
	csrf := hidden(acct.body, "csrf_token")
	post := func(path string, form url.Values) *response {
		return b.do(request{method: http.MethodPost, target: path, form: form,
			header: http.Header{"Origin": {f.origin()}, "Sec-Fetch-Site": {"same-origin"}}})
	}
	if r := post("/account/upstream/link", url.Values{"csrf_token": {csrf}, "idp": {"corp"}, "current_password": {"wrong"}}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("link with a wrong password: %d, want 401", r.StatusCode)
	}
	r := post("/account/upstream/link", url.Values{"csrf_token": {csrf}, "idp": {"corp"}, "current_password": {"pw-pw-pw-pw-pw"}})
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), f.op.URL) {
		t.Fatalf("link: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if !strings.Contains(r.Header.Get("Location"), "prompt=login") {
		t.Fatal("linking does not ask the provider to authenticate anew")
	}
	if r := b.get(f.atProvider(r.Header.Get("Location"), "carol")); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("link callback: %d to %q:\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	if id, err := f.store.Identity(context.Background(), f.op.URL, "sub-carol"); err != nil || id.UserID != bob.ID {
		t.Fatalf("link not recorded: %+v %v", id, err)
	}
	if r := post("/account/upstream/unlink", url.Values{"csrf_token": {csrf}, "idp": {"corp"}, "current_password": {"pw-pw-pw-pw-pw"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("unlink: %d:\n%s", r.StatusCode, r.body)
	}
	if _, err := f.store.Identity(context.Background(), f.op.URL, "sub-carol"); err == nil {
		t.Fatal("unlink left the link")
	}
	// Alice exists only through the provider: her last way in stays.
	a := f.browser()
	page := a.get(f.atProvider(f.authorize(a, ""), "alice"))
	if r := f.signUp(a, page, "alice"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.StatusCode)
	}
	acct = a.get("/")
	if strings.Contains(acct.body, "current_password") {
		t.Fatal("an account without a password is asked for one")
	}
	r = a.do(request{method: http.MethodPost, target: "/account/upstream/unlink",
		form:   url.Values{"csrf_token": {hidden(acct.body, "csrf_token")}, "idp": {"corp"}},
		header: http.Header{"Origin": {f.origin()}, "Sec-Fetch-Site": {"same-origin"}}})
	if r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "only way you can sign in") {
		t.Fatalf("unlink of the last way in: %d:\n%s", r.StatusCode, r.body)
	}
}

// TestPasswordLoginOff: the sign-in page has the provider's button and no
// password form; password posts and password sign-up are refused.
func TestPasswordLoginOff(t *testing.T) {
	f := newFedHarness(t, "", options{mutate: func(c *config.Config) { c.PasswordLogin = "off" }})
	f.createUser("bob", "pw-pw-pw-pw-pw")
	b := f.browser()
	page := b.get("/login?return_to=" + url.QueryEscape(f.cfg.URL+"/"))
	if strings.Contains(page.body, `name="password"`) || !strings.Contains(page.body, "Sign in with Corp SSO") ||
		!strings.Contains(page.body, `href="/login/upstream/corp?return_to=`) {
		t.Fatalf("sign-in page:\n%s", page.body)
	}
	r := b.post("/login", url.Values{"username": {"bob"}, "password": {"pw-pw-pw-pw-pw"}, "csrf_token": {b.token()}})
	if r.StatusCode != http.StatusForbidden || b.cookies[f.cfg.Cookies().Access] != "" {
		t.Fatalf("password post: %d, want 403 and no session", r.StatusCode)
	}
	if r := b.get("/register"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("register: %d, want 403", r.StatusCode)
	}
}

// TestUpstreamDiscoveryRecovers: a provider down when the issuer starts
// neither delays start-up nor stays broken: sign-ins get the "not
// answering" page, and once it is back (and the retry spacing passed) the
// next sign-in works.
func TestUpstreamDiscoveryRecovers(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{Users: "../../testdata/upstream/users.json"})
	op.SetMode(oidctest.DownDiscover)
	secret := filepath.Join(t.TempDir(), "corp.secret")
	if err := os.WriteFile(secret, []byte(op.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{upstreamWait: 500 * time.Millisecond, mutate: func(c *config.Config) {
		_ = c.IDPs.Set("name=corp,signup=open,issuer=" + op.URL + ",client-id=" + op.ClientID + ",client-secret-file=" + secret)
		if err := c.LoadSecrets(); err != nil {
			t.Fatal(err)
		}
	}})
	op.Register(h.cfg.URL + "/login/upstream/corp/callback")
	f := &fedHarness{harness: h, op: op}
	b := h.browser()
	if r := b.get("/login/upstream/corp"); r.StatusCode != http.StatusBadGateway || !strings.Contains(r.body, "Back to sign-in") {
		t.Fatalf("provider down: %d:\n%s", r.StatusCode, r.body)
	}
	op.SetMode(oidctest.Real)
	h.clock.Advance(upstreamRetry)
	page := b.get(f.atProvider(f.authorize(b, ""), "alice"))
	if page.StatusCode != http.StatusOK || hidden(page.body, "pending") == "" {
		t.Fatalf("after the provider came back: %d:\n%s", page.StatusCode, page.body)
	}
}
