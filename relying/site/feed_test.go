package site_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/relying/policy"
	"github.com/canopy-sso/canopy/relying/site"
)

// feedIssuer is an issuer whose discovery offers the second revocation
// feed, served as set (status 0: 200).
type feedIssuer struct {
	mu     sync.Mutex
	status int
	body   string
}

func (f *feedIssuer) set(status int, body string) {
	f.mu.Lock()
	f.status, f.body = status, body
	f.mu.Unlock()
}

func newFeedIssuer(t *testing.T, doc *corpusFile) (*http.Client, *feedIssuer) {
	jwks, err := os.ReadFile(filepath.Join(corpusDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &feedIssuer{body: `{"revocations":[]}`}
	iss := doc.Issuer
	disc, _ := json.Marshal(map[string]any{
		"issuer": iss, "jwks_uri": iss + "/.well-known/jwks.json", "id_token_signing_alg_values_supported": []string{"EdDSA", "ES256"},
		"canopy_cookie_name": "canopy", "canopy_cookie_domain": doc.Audience, "canopy_revocation_uri": iss + "/sessions/revoked",
		"canopy_revocation_v2_uri": iss + "/sessions/revocations", "canopy_refresh_uri": iss + "/refresh", "canopy_login_uri": iss + "/login",
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(disc) })
	mux.HandleFunc("/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) })
	mux.HandleFunc("/sessions/revoked", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "relying must read the second feed", http.StatusGone)
	})
	mux.HandleFunc("/sessions/revocations", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		status, body := f.status, f.body
		f.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
		}
		_, _ = io.WriteString(w, body)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, f
}

// feedSite is the relying example in front of upstream (nil: no proxy),
// reading the feed every 20ms.
func feedSite(t *testing.T, doc *corpusFile, upstream *url.URL) (http.Handler, *feedIssuer, *site.Metrics) {
	now := func() time.Time { return time.Unix(doc.Now, 0) }
	hc, f := newFeedIssuer(t, doc)
	m := site.NewMetrics(func() time.Duration { return 0 })
	log := slog.New(slog.DiscardHandler)
	client, err := sso.New(t.Context(), sso.Options{Issuer: doc.Issuer, HTTPClient: hc, RevocationPoll: 20 * time.Millisecond,
		Leeway: 30 * time.Second, Now: now, Logger: log, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	pattern, _ := policy.ParsePattern("app.domain.localhost")
	h, err := site.New(site.Config{Pattern: pattern, Issuer: doc.Issuer, Client: client, Upstream: upstream, Log: log, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return h, f, m
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a ceiling for loaded CI machines, not a target
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counter(t *testing.T, m *site.Metrics, name, outcome string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestReadyzRevocationFeed (red-team 6): a feed the issuer serves but that
// cannot be read turns /.canopy/readyz to 503 with the reason and counts as
// unreadable; an unreachable issuer keeps the service ready.
func TestReadyzRevocationFeed(t *testing.T) {
	doc := loadCorpus(t)
	h, f, m := feedSite(t, doc, nil)
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://app.domain.localhost/.canopy/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("readyz with a good feed: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		ready      bool
		outcome    string
	}{
		{"unreachable issuer", "bad gateway", http.StatusBadGateway, true, sso.PollUnreachable},
		{"malformed feed", `{"revocations":[{"sub":"u_alice","claim":"auth_time","before":1,"until":1}]}`, 0, false, sso.PollUnreadable},
		{"too large", `{"revocations":[` + strings.Repeat(`{"sid":"s_x","until":1},`, 400_000) + `]}`, 0, false, sso.PollUnreadable},
		{"overflow", `{"revocations":[],"overflow":true}`, 0, false, sso.PollUnreadable},
		{"good again", `{"revocations":[]}`, 0, true, sso.PollUpdated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := counter(t, m, "canopy_relying_revocation_polls_total", tc.outcome)
			f.set(tc.status, tc.body)
			eventually(t, "a poll of the new feed", func() bool {
				return counter(t, m, "canopy_relying_revocation_polls_total", tc.outcome) > start+1
			})
			code, body := readyz()
			if ready := code == http.StatusOK; ready != tc.ready {
				t.Errorf("readyz = %d %q, want ready %v", code, body, tc.ready)
			}
			if !tc.ready && !strings.Contains(body, "revocation feed unreadable") {
				t.Errorf("readyz body %q does not say why", body)
			}
		})
	}
}

// upgradeUpstream answers an Upgrade request with 101 and then echoes lines
// until the connection closes, as a WebSocket app would.
func upgradeUpstream(t *testing.T) *url.URL {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	return u
}

// dialUpgrade opens an upgraded connection through front with token.
func dialUpgrade(t *testing.T, front *httptest.Server, token string) (net.Conn, *bufio.Reader) {
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app.domain.localhost\r\nCookie: canopy=%s\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n", token)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	echoLine(t, conn, br)
	return conn, br
}

func echoLine(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "ping\n")
	if line, err := br.ReadString('\n'); line != "ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
}

// TestProxyClosesRevokedConnections (red-team 13): an upgraded connection
// through proxy mode is closed soon after its session is revoked, by sid or
// by a user-level entry; another user's stays open.
func TestProxyClosesRevokedConnections(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	until := doc.Now + 300
	for _, tc := range []struct{ name, feed string }{
		{"session entry", fmt.Sprintf(`{"revocations":[{"sid":"s_alice","until":%d}]}`, until)},
		{"user entry", fmt.Sprintf(`{"revocations":[{"sub":"u_alice","claim":"iat","before":%d,"until":%d}]}`, doc.Now, until)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, f, _ := feedSite(t, doc, upgradeUpstream(t))
			front := httptest.NewServer(h)
			t.Cleanup(front.Close)
			alice, abr := dialUpgrade(t, front, tokens["alice"].token)
			bob, bbr := dialUpgrade(t, front, tokens["bob"].token)

			f.set(0, tc.feed)
			start := time.Now()
			_ = alice.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err := abr.ReadString('\n')
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("alice's connection still open %v after her session was revoked (read: %v)", time.Since(start), err)
			}
			echoLine(t, bob, bbr)
		})
	}
}

// TestProxyClosesConnectionsAtSessionEnd (red-team 13): an upgraded
// connection is closed when its session reaches its absolute end (the
// token's session_exp), with no revocation; a session that lives on keeps
// its connection.
func TestProxyClosesConnectionsAtSessionEnd(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	h, _, _ := feedSite(t, doc, upgradeUpstream(t))
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	alice, abr := dialUpgrade(t, front, tokens["alice-ending"].token)
	bob, bbr := dialUpgrade(t, front, tokens["bob"].token)

	start := time.Now()
	_ = alice.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := abr.ReadString('\n')
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the connection is still open %v after its session ended (read: %v)", time.Since(start), err)
	}
	echoLine(t, bob, bbr)
}
