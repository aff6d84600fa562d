package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/issuer/clients"
	"github.com/canopy-sso/canopy/issuer/store"
)

// logoutReceiver is a client's back-channel logout endpoint on loopback:
// it answers each POST with the next status of its script (200 when the
// script is used up) and keeps the logout tokens it was sent.
type logoutReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	tokens   []string // every logout_token received, answered or not
	got      chan struct{}
}

func newLogoutReceiver(t *testing.T, statuses ...int) *logoutReceiver {
	r := &logoutReceiver{statuses: statuses, got: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		if err := req.ParseForm(); err != nil || len(req.PostForm["logout_token"]) != 1 {
			http.Error(w, "want one logout_token", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.tokens = append(r.tokens, req.PostForm.Get("logout_token"))
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		r.got <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *logoutReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

// waitTokens waits until the receiver has been sent n tokens.
func (r *logoutReceiver) waitTokens(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if got := r.received(); len(got) >= n {
			return got
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("the back-channel receiver got %d logout tokens, want %d", len(r.received()), n)
		}
	}
}

// waitOutboxEmpty waits until no row is left in the outbox, due or not.
func (h *harness) waitOutboxEmpty(t *testing.T) {
	t.Helper()
	waitUntil(t, "the outbox empty", func() bool {
		due, err := h.store.DueLogouts(t.Context(), h.clock.Now().Add(100*365*24*time.Hour), 10)
		return err == nil && len(due) == 0
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logoutTokenClaims are what a relying party reads from a logout token.
type logoutTokenClaims struct {
	Issuer    string                     `json:"iss"`
	Audience  string                     `json:"aud"`
	Subject   string                     `json:"sub"`
	SessionID string                     `json:"sid"`
	IssuedAt  int64                      `json:"iat"`
	Expiry    int64                      `json:"exp"`
	JTI       string                     `json:"jti"`
	Events    map[string]json.RawMessage `json:"events"`
	Nonce     *string                    `json:"nonce"`
}

// verifyLogoutToken checks a logout token as a relying party does
// (Back-Channel Logout §2.6): go-oidc verifies the signature against the
// issuer's JWKS fetched over HTTP, the issuer, the audience and the expiry;
// then the typ header, the event, the absent nonce, sub and sid.
func (h *harness) verifyLogoutToken(t *testing.T, c rp, raw string) logoutTokenClaims {
	t.Helper()
	ks := oidc.NewRemoteKeySet(oidc.ClientContext(t.Context(), &http.Client{Transport: hostRewrite{h}}), h.cfg.URL+"/.well-known/jwks.json")
	v := oidc.NewVerifier(h.cfg.URL, ks, &oidc.Config{ClientID: c.ID, SupportedSigningAlgs: []string{c.IDTokenAlg}, Now: h.clock.Now})
	tok, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("the logout token does not verify against the issuer's keys: %v", err)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(c.IDTokenAlg)})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders["typ"]; typ != LogoutTokenType {
		t.Errorf("logout token typ %v, want %s", typ, LogoutTokenType)
	}
	var cl logoutTokenClaims
	if err := tok.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	ev, ok := cl.Events[BackchannelEvent]
	if !ok || len(cl.Events) != 1 || string(ev) != "{}" || cl.Nonce != nil || cl.JTI == "" || cl.Subject == "" || cl.SessionID == "" ||
		cl.Audience != c.ID || cl.Expiry <= cl.IssuedAt {
		t.Errorf("logout token claims %+v", cl)
	}
	return cl
}

// hostRewrite sends requests for the issuer's URL to the harness listener.
type hostRewrite struct{ h *harness }

func (r hostRewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	u, _ := url.Parse(r.h.ts.URL)
	req = req.Clone(req.Context())
	req.Host = r.h.host
	req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
	return http.DefaultTransport.RoundTrip(req)
}

// bcClients registers two clients with back-channel URIs on their own
// receivers: "wiki" is the one that gets tokens, "idle" never does.
func (h *harness) bcClients(t *testing.T, statuses ...int) (rp, *logoutReceiver, rp, *logoutReceiver) {
	recv, idleRecv := newLogoutReceiver(t, statuses...), newLogoutReceiver(t)
	wiki := h.addClient(clients.Spec{Name: "wiki", RedirectURIs: []string{"https://wiki.example.com/cb"}, BackchannelLogoutURI: recv.URL + "/bcl"})
	idle := h.addClient(clients.Spec{Name: "idle", RedirectURIs: []string{"https://idle.example.com/cb"}, BackchannelLogoutURI: idleRecv.URL + "/bcl"})
	return wiki, recv, idle, idleRecv
}

// signInTo gives c tokens in b's session.
func (b *browser) signInTo(t *testing.T, c rp) tokens {
	t.Helper()
	p := authParams(c)
	p.Set("scope", "openid profile offline_access")
	return b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+p.Encode())))
}

// TestBackchannelLogout: for each way a Canopy session ends, the client
// that received a token in it gets one logout token for that session,
// signed with its ID token key, and a client with a back-channel URI that
// got no token in it gets nothing.
func TestBackchannelLogout(t *testing.T) {
	const pw = "correct horse battery"
	// Only the expiry case has the worker look for sessions that ran out
	// (and revoked ones whose rows are missing) more often than every
	// DefaultBackchannelHousekeep: every other case must have written its
	// outbox row in the transaction that ended the session.
	cases := []struct {
		name   string
		others bool // the session that ends is the second browser's
		end    func(h *harness, b, other *browser, user store.User)
	}{
		{"sign-out", false, func(h *harness, b, _ *browser, _ store.User) {
			b.post("/logout", url.Values{"csrf_token": {b.token()}})
		}},
		{"end-session then sign-out", false, func(h *harness, b, _ *browser, _ store.User) {
			r := b.get("/end-session")
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("end-session: %d", r.StatusCode)
			}
			b.post("/logout", url.Values{"csrf_token": {b.token()}})
		}},
		{"sign out others", true, func(h *harness, b, other *browser, _ store.User) {
			other.post("/account/signout", url.Values{"csrf_token": {other.token()}, "sid": {"others"}})
		}},
		{"sign out one session", true, func(h *harness, b, other *browser, _ store.User) {
			other.post("/account/signout", url.Values{"csrf_token": {other.token()}, "sid": {b.sid()}})
		}},
		{"password change", true, func(h *harness, b, other *browser, _ store.User) {
			r := other.post("/account/password", url.Values{"csrf_token": {other.token()}, "current_password": {pw},
				"new_password": {"battery staple horse"}, "signout_others": {"on"}})
			if r.StatusCode >= 400 {
				t.Fatalf("password change: %d %s", r.StatusCode, r.body)
			}
		}},
		{"refresh token reuse", false, func(h *harness, b, _ *browser, _ store.User) {
			old := b.cookies[h.cfg.Cookies().Refresh]
			b.get("/refresh")
			h.clock.Advance(h.cfg.RefreshGrace + time.Second)
			b.cookies[h.cfg.Cookies().Refresh] = old
			b.get("/refresh")
		}},
		// What `issuer user disable` and `issuer session revoke` do: the
		// store, from another process; the worker finds the row by polling.
		{"user disabled", false, func(h *harness, _, _ *browser, u store.User) {
			if err := h.store.SetDisabled(context.Background(), u.ID, true, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"admin revoke", false, func(h *harness, b, _ *browser, _ store.User) {
			if err := h.store.RevokeSession(context.Background(), b.sid(), store.ReasonLogout, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"session expiry", false, func(h *harness, _, _ *browser, _ store.User) {
			h.clock.Advance(h.cfg.SessionTTL + time.Second)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := options{idTokenKeys: true, backchannel: 20 * time.Millisecond}
			if tc.name == "session expiry" {
				o.housekeep = 50 * time.Millisecond
			}
			h := newHarness(t, o)
			alice := h.createUser("alice", pw)
			wiki, recv, idle, idleRecv := h.bcClients(t)
			b := h.browser()
			b.login("alice", pw)
			sid := b.sid()
			tk := b.signInTo(t, wiki)
			var other *browser
			if tc.others {
				other = h.browser()
				other.login("alice", pw)
				other.signInTo(t, idle) // idle's token is in the session that stays
			}
			if got := recv.received(); len(got) != 0 {
				t.Fatalf("logout tokens before the session ended: %d", len(got))
			}
			tc.end(h, b, other, alice)
			got := recv.waitTokens(t, 1)
			cl := h.verifyLogoutToken(t, wiki, got[0])
			if cl.SessionID != sid || cl.Subject != alice.ID || cl.Issuer != h.cfg.URL {
				t.Errorf("logout token for sid %s sub %s, want %s %s", cl.SessionID, cl.Subject, sid, alice.ID)
			}
			_, idClaims := h.idClaims(t, tk.IDToken)
			if idClaims.SessionID != cl.SessionID {
				t.Errorf("the ID token's sid %s differs from the logout token's %s", idClaims.SessionID, cl.SessionID)
			}
			h.waitOutboxEmpty(t)
			if n := len(idleRecv.received()); n != 0 {
				t.Errorf("the client that got no token in the session was sent %d logout tokens", n)
			}
			if n := len(recv.received()); n != 1 {
				t.Errorf("%d logout tokens for one session, want 1", n)
			}
			// The client's refresh token died with the session.
			r := b.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}}, wiki.ID, wiki.secret)
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("refresh after the session ended: %d %s", r.StatusCode, r.body)
			}
		})
	}
}

// TestBackchannelRetry: a receiver that answers 500 (then a redirect,
// which is not followed) gets the logout again after the backoff, and the
// row goes once delivered; a receiver that never accepts is given up.
func TestBackchannelRetry(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true, backchannel: 20 * time.Millisecond})
	h.createUser("alice", "correct horse battery")
	wiki, recv, _, _ := h.bcClients(t, http.StatusInternalServerError, http.StatusFound)
	b := h.browser()
	b.login("alice", "correct horse battery")
	b.signInTo(t, wiki)
	b.post("/logout", url.Values{"csrf_token": {b.token()}})
	recv.waitTokens(t, 1)
	time.Sleep(200 * time.Millisecond) // ten polls: not yet due again
	if n := len(recv.received()); n != 1 {
		t.Fatalf("%d attempts before the backoff passed, want 1", n)
	}
	h.clock.Advance(backoffBase) // the first retry is due within one base delay
	recv.waitTokens(t, 2)
	h.clock.Advance(2 * backoffBase)
	got := recv.waitTokens(t, 3)
	h.waitOutboxEmpty(t)
	first, last := h.verifyLogoutToken(t, wiki, got[0]), h.verifyLogoutToken(t, wiki, got[2])
	if first.JTI == last.JTI || first.SessionID != last.SessionID {
		t.Errorf("retries: jti %s then %s, sid %s then %s; want a new token for the same session", first.JTI, last.JTI, first.SessionID, last.SessionID)
	}

	// Never accepted: BackchannelMaxAttempts attempts, then dropped.
	never := make([]int, BackchannelMaxAttempts+5)
	for i := range never {
		never[i] = http.StatusServiceUnavailable
	}
	recv2 := newLogoutReceiver(t, never...)
	down := h.addClient(clients.Spec{Name: "down", RedirectURIs: []string{"https://down.example.com/cb"}, BackchannelLogoutURI: recv2.URL})
	b = h.browser()
	b.login("alice", "correct horse battery")
	b.signInTo(t, down)
	b.post("/logout", url.Values{"csrf_token": {b.token()}})
	for i := 1; i <= BackchannelMaxAttempts; i++ {
		recv2.waitTokens(t, i)
		h.clock.Advance(backoffCap)
	}
	h.waitOutboxEmpty(t)
	time.Sleep(100 * time.Millisecond)
	if n := len(recv2.received()); n != BackchannelMaxAttempts {
		t.Errorf("%d attempts at a receiver that never accepts, want %d", n, BackchannelMaxAttempts)
	}
}

// TestBackchannelSurvivesRestart: a logout pending when the issuer stops
// (its receiver was down) is delivered by the next issuer on the same
// database.
func TestBackchannelSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, options{idTokenKeys: true, backchannel: 20 * time.Millisecond, dir: dir})
	alice := h.createUser("alice", "correct horse battery")
	wiki, recv, _, _ := h.bcClients(t, http.StatusServiceUnavailable)
	b := h.browser()
	b.login("alice", "correct horse battery")
	sid := b.sid()
	b.signInTo(t, wiki)
	b.post("/logout", url.Values{"csrf_token": {b.token()}})
	recv.waitTokens(t, 1)
	h.ts.Close()
	h.srv.Close()
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}

	h2 := newHarness(t, options{idTokenKeys: true, backchannel: 20 * time.Millisecond, dir: dir})
	h2.clock.Advance(time.Hour) // past the retry time the first issuer set
	got := recv.waitTokens(t, 2)
	h2.waitOutboxEmpty(t)
	cl := h2.verifyLogoutToken(t, wiki, got[1])
	if cl.SessionID != sid || cl.Subject != alice.ID {
		t.Errorf("after the restart: logout token for %s/%s, want %s/%s", cl.Subject, cl.SessionID, alice.ID, sid)
	}
}

// TestBackchannelDiscovery: the discovery document says logout tokens
// are sent, with sid.
func TestBackchannelDiscovery(t *testing.T) {
	h := newHarness(t, options{})
	r := h.browser().get("/.well-known/openid-configuration")
	var d map[string]any
	if err := json.Unmarshal([]byte(r.body), &d); err != nil {
		t.Fatal(err)
	}
	if d["backchannel_logout_supported"] != true || d["backchannel_logout_session_supported"] != true {
		t.Errorf("discovery: backchannel_logout_supported %v, backchannel_logout_session_supported %v",
			d["backchannel_logout_supported"], d["backchannel_logout_session_supported"])
	}
}

// TestBackchannelSlowReceiver: a receiver that does not answer holds one
// delivery, not the worker: another client's logout goes out meanwhile,
// and the hanging row, due again, is not sent a second time while its
// attempt is still open. (The delivery client here waits a minute, so a
// worker that waited for the slow receiver would miss the deadline.)
func TestBackchannelSlowReceiver(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true, backchannel: 20 * time.Millisecond,
		bcClient: &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})
	h.createUser("alice", "correct horse battery")
	release := make(chan struct{})
	var mu sync.Mutex
	slowHits := 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		slowHits++
		mu.Unlock()
		<-release
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handler
	hits := func() int {
		mu.Lock()
		defer mu.Unlock()
		return slowHits
	}
	stuck := h.addClient(clients.Spec{Name: "stuck", RedirectURIs: []string{"https://stuck.example.com/cb"}, BackchannelLogoutURI: slow.URL})
	wiki, recv, _, _ := h.bcClients(t)

	b1 := h.browser()
	b1.login("alice", "correct horse battery")
	b1.signInTo(t, stuck)
	b1.post("/logout", url.Values{"csrf_token": {b1.token()}})
	waitUntil(t, "the slow receiver's request", func() bool { return hits() == 1 })
	h.clock.Advance(backoffCap) // the hanging row is due again

	b2 := h.browser()
	b2.login("alice", "correct horse battery")
	b2.signInTo(t, wiki)
	b2.post("/logout", url.Values{"csrf_token": {b2.token()}})
	recv.waitTokens(t, 1)
	time.Sleep(200 * time.Millisecond) // ten polls
	if n := hits(); n != 1 {
		t.Errorf("the hanging row was sent %d times while its attempt was open, want 1", n)
	}
}
