package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
	"github.com/canopy-sso/canopy/issuer/throttle"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/username"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// cheapParams make a hash cost microseconds: every test but the timing test uses them.
var cheapParams = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// testClock is the injected clock: it stands still unless a test advances it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// options change the harness from its default: development URL, open
// registration, no trusted proxies, the cheap hasher and the real throttle.
type options struct {
	https          bool   // https://domain.com instead of http://domain.localhost:PORT
	registration   string // "" means open
	trustedProxies string
	params         *password.Params              // nil means cheapParams
	noThrottle     bool                          // throttle.InsecureDisabled()
	noFactorLimit  bool                          // second factors unthrottled too
	mutate         func(*config.Config)          // last word on the config
	dir            string                        // for the database and keys; "" means t.TempDir()
	wrapStore      func(store.Store) store.Store // what the server sees of the store; nil: the store itself
	metrics        *metrics.Issuer               // nil records nothing
	upstreamWait   time.Duration                 // Deps.UpstreamTimeout; 0: the default
	group          sqlstore.GroupCommit          // the SQLite store's group commit; zero: its defaults
	streamMaxSubs  int                           // revocation streams per instance; 0: the default
	streamMaxPer   int                           // revocation streams per client; 0: the default
	idTokenKeys    bool                          // keep RS256 keys too, as the issuer does, for ID tokens
	backchannel    time.Duration                 // Deps.BackchannelPoll; 0: the default
	housekeep      time.Duration                 // Deps.BackchannelHousekeep; 0: the default
	bcClient       *http.Client                  // Deps.BackchannelClient; nil: the default

	// logTo, when set, receives every log line at debug level instead of the test log.
	logTo io.Writer
}

// harness is a real Server (SQLite file, key directory, hasher, throttle)
// behind a real HTTP listener.
type harness struct {
	t      testing.TB
	cfg    config.Config
	srv    *Server
	ts     *httptest.Server
	store  *sqlite.Store
	clock  *testClock
	client *http.Client
	host   string // the Host header every request carries: the host of cfg.URL
	port   string // the listener's port
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	ts := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	clock := &testClock{t: time.Now().Truncate(time.Second)}

	cfg := config.Default()
	cfg.URL = "http://domain.localhost:" + port
	if o.https {
		cfg.URL = "https://domain.com"
	}
	cfg.DB = filepath.Join(dir, "issuer.db")
	cfg.Keys = filepath.Join(dir, "keys")
	if o.registration != "" {
		cfg.Registration = o.registration
	}
	cfg.TrustedProxies = o.trustedProxies
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	st, err := sqlite.Open(cfg.DB, sqlite.Options{Now: clock.Now, Group: o.group})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	kopts := keys.Options{Alg: cfg.Alg, JWKSMaxAge: cfg.JWKSMaxAge, AccessTTL: cfg.AccessTTL, Now: clock.Now}
	if o.idTokenKeys {
		kopts.Algs = wire.IDTokenAlgorithms()
	}
	kd, err := keys.Open(cfg.Keys, kopts)
	if err != nil {
		t.Fatal(err)
	}
	if err := kd.Ensure(); err != nil {
		t.Fatal(err)
	}
	params := cheapParams
	if o.params != nil {
		params = *o.params
	}
	hasher, err := password.NewHasher(params, 4)
	if err != nil {
		t.Fatal(err)
	}
	var lim *throttle.Limiter
	if o.noThrottle {
		lim = throttle.InsecureDisabled()
	} else {
		tc := throttle.DefaultConfig()
		tc.Now = clock.Now
		lim = throttle.New(tc)
	}
	names, err := username.LoadRules("")
	if err != nil {
		t.Fatal(err)
	}
	var factorLim *throttle.Limiter
	if o.noFactorLimit {
		factorLim = throttle.InsecureDisabled()
	}
	var served store.Store = st
	if o.wrapStore != nil {
		served = o.wrapStore(st)
	}
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.logTo != nil {
		logger = slog.New(slog.NewTextHandler(o.logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := New(context.Background(), Deps{
		Config: cfg, Store: served, Keys: kd, Hasher: hasher, Throttle: lim, Names: names, FactorThrottle: factorLim,
		Log: logger,
		Now: clock.Now, Metrics: o.metrics, UpstreamTimeout: o.upstreamWait,
		StreamHeartbeat:      cfg.StreamHeartbeat,
		StreamMaxSubscribers: o.streamMaxSubs, StreamMaxPerClient: o.streamMaxPer,
		BackchannelPoll: o.backchannel, BackchannelHousekeep: o.housekeep, BackchannelClient: o.bcClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)

	u, _ := url.Parse(cfg.URL)
	return &harness{
		t: t, cfg: cfg, srv: srv, ts: ts, store: st, clock: clock, host: u.Host, port: port,
		client: &http.Client{
			Timeout:       time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// testLogWriter sends the server's warnings and errors to the test log, so a
// failing case shows the cause the client never sees.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// origin is the issuer's own origin as a browser sends it.
func (h *harness) origin() string { return h.cfg.URL }

// createUser stores a user directly, the way `issuer user add` does.
func (h *harness) createUser(name, pw string) store.User {
	h.t.Helper()
	hash, err := h.srv.hasher.Hash(context.Background(), pw)
	if err != nil {
		h.t.Fatal(err)
	}
	u := store.User{ID: randomID(16), Username: name, PasswordHash: hash, CreatedAt: h.clock.Now()}
	if err := h.store.CreateUser(context.Background(), u); err != nil {
		h.t.Fatal(err)
	}
	return u
}

// browser is one user agent: its own cookies, sent to the issuer only. It
// keeps cookies by name, which is all a single-host test needs.
type browser struct {
	h       *harness
	cookies map[string]string
	header  http.Header // added to every request
}

func (h *harness) browser() *browser {
	return &browser{h: h, cookies: map[string]string{}, header: http.Header{}}
}

// response is an answered request with its body read.
type response struct {
	*http.Response
	body string
}

// request is one request a test sends; zero fields mean "as a plain browser would".
type request struct {
	method  string
	target  string      // path and query
	form    url.Values  // sent as application/x-www-form-urlencoded when non-nil
	body    io.Reader   // sent as is when form is nil
	header  http.Header // overrides the browser's
	cookies *string     // a raw Cookie header instead of the jar's
}

func (b *browser) do(r request) *response {
	b.h.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	body := r.body
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequest(r.method, b.h.ts.URL+r.target, body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Host = b.h.host
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.cookies != nil {
		if *r.cookies != "" {
			req.Header.Set("Cookie", *r.cookies)
		}
	} else {
		for name, value := range b.cookies {
			req.AddCookie(&http.Cookie{Name: name, Value: value})
		}
	}
	resp, err := b.h.client.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", r.method, r.target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.h.t.Fatalf("%s %s: read body: %v", r.method, r.target, err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return &response{Response: resp, body: string(data)}
}

func (b *browser) get(target string) *response { return b.do(request{target: target}) }

func (b *browser) post(target string, form url.Values) *response {
	return b.do(request{method: http.MethodPost, target: target, form: form})
}

// token loads a form and returns its csrf_token, as a person opening the page would.
func (b *browser) token() string {
	b.h.t.Helper()
	r := b.get("/logout") // renders its form whether or not the browser is signed in
	tok := hidden(r.body, "csrf_token")
	if tok == "" {
		b.h.t.Fatalf("GET /logout: no csrf_token in the form (status %d)", r.StatusCode)
	}
	return tok
}

// login signs in through the form and fails the test unless it succeeds.
func (b *browser) login(name, pw string) *response {
	b.h.t.Helper()
	r := b.post("/login", url.Values{"username": {name}, "password": {pw}, "csrf_token": {b.token()}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") == "/login/otp" {
		b.h.t.Fatalf("login %s: status %d to %q, want 303 and a session; body:\n%s", name, r.StatusCode, r.Header.Get("Location"), r.body)
	}
	return r
}

// claims are the claims of the browser's access token.
func (b *browser) claims() tokenClaims {
	b.h.t.Helper()
	return claimsOf(b.h.t, b.cookies[b.h.cfg.Cookies().Access])
}

// sid is the session id in the browser's access token.
func (b *browser) sid() string {
	b.h.t.Helper()
	return claimsOf(b.h.t, b.cookies[b.h.cfg.Cookies().Access]).SessionID
}

// tokenClaims are the claims the tests read from an access token.
type tokenClaims struct {
	SessionID string   `json:"sid"`
	Subject   string   `json:"sub"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	AuthTime  int64    `json:"auth_time"`
	AMR       []string `json:"amr"`
	Groups    []string `json:"groups"`
	Raw       map[string]json.RawMessage
}

// claimsOf decodes a JWS payload without verifying it: the server verified it.
func claimsOf(t testing.TB, jws string) tokenClaims {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("access cookie %q is not a compact JWS", jws)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &c.Raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// hidden returns the unescaped value of the first hidden input named name.
func hidden(body, name string) string {
	re := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// setCookies returns the response's Set-Cookie headers by cookie name.
func setCookies(r *response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range r.Cookies() {
		out[c.Name] = c
	}
	return out
}

// sessionActive reports whether the store still considers sid usable.
func (h *harness) sessionActive(sid string) bool {
	h.t.Helper()
	s, err := h.store.Session(context.Background(), sid)
	if err != nil {
		h.t.Fatalf("session %s: %v", sid, err)
	}
	return s.Active(h.clock.Now(), h.cfg.IdleTTL)
}

// sessionCount is how many active sessions the user has.
func (h *harness) sessionCount(userID string) int {
	h.t.Helper()
	list, err := h.store.ListSessions(context.Background(), userID, h.clock.Now(), h.cfg.IdleTTL)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(list)
}
