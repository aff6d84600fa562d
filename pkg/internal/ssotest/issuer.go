package ssotest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// FeedServer is a real /sessions/revoked endpoint.
type FeedServer struct {
	*httptest.Server
	mu          sync.Mutex
	body        string
	down        bool
	Polls       atomic.Int64
	NotModified atomic.Int64
}

// NewFeedServer serves body until the test ends.
func NewFeedServer(t testing.TB, body string) *FeedServer {
	f := &FeedServer{body: body}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.Polls.Add(1)
		f.mu.Lock()
		body, down := f.body, f.down
		f.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		sum := sha256.Sum256([]byte(body))
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			f.NotModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.Close)
	return f
}

// Set changes the feed, or takes it down (502).
func (f *FeedServer) Set(body string, down bool) {
	f.mu.Lock()
	f.body, f.down = body, down
	f.mu.Unlock()
}

// FakeIssuer serves what a Canopy issuer publishes: discovery, the JWKS, the
// revocation feed and /healthz.
type FakeIssuer struct {
	*httptest.Server
	URL  string
	Keys *JWKSServer
	Feed *FeedServer
	mu   sync.Mutex
	down bool
}

// NewFakeIssuer serves on ln (or a fresh listener when nil), without starting.
func NewFakeIssuer(t testing.TB, ln net.Listener, k *Key) *FakeIssuer {
	f := &FakeIssuer{Keys: NewJWKSServer(t, k), Feed: NewFeedServer(t, `{"revoked":[]}`)}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	f.URL = "http://domain.localhost:" + port
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(wire.Discovery{
			Issuer: f.URL, JWKSURI: f.URL + "/.well-known/jwks.json", Algorithms: []string{wire.AlgEdDSA, wire.AlgES256},
			CookieName: "canopy", CookieDomain: "domain.localhost", RevocationURI: f.URL + "/sessions/revoked",
			RefreshURI: f.URL + "/refresh", LoginURI: f.URL + "/login",
		})
	})
	mux.HandleFunc("/.well-known/jwks.json", f.Keys.ServeHTTP)
	mux.HandleFunc("/sessions/revoked", func(w http.ResponseWriter, r *http.Request) { f.Feed.Config.Handler.ServeHTTP(w, r) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down := f.down
		f.mu.Unlock()
		if down {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	f.Listener = ln
	t.Cleanup(f.Close)
	return f
}

// SetDown makes every endpoint answer 502, or stops that.
func (f *FakeIssuer) SetDown(d bool) {
	f.mu.Lock()
	f.down = d
	f.mu.Unlock()
}

// WaitFor Polls cond until it holds, failing the test after 5 s.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Itoa formats n in decimal.
func Itoa(n int64) string { return strconv.FormatInt(n, 10) }
