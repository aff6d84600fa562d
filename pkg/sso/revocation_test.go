package sso

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// feedServer is a real /sessions/revoked endpoint.
type feedServer struct {
	*httptest.Server
	mu          sync.Mutex
	body        string
	down        bool
	polls       atomic.Int64
	notModified atomic.Int64
}

func newFeedServer(t *testing.T, body string) *feedServer {
	f := &feedServer{body: body}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.polls.Add(1)
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
			f.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *feedServer) set(body string, down bool) {
	f.mu.Lock()
	f.body, f.down = body, down
	f.mu.Unlock()
}

func TestRevocationList(t *testing.T) {
	now := testEpoch.Unix()
	feed := newFeedServer(t, `{"revoked":[{"sid":"a","until":`+itoa(now+300)+`},{"sid":"b","until":`+itoa(now+60)+`}]}`)
	clk := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: time.Hour, Now: clk.Now, Logger: discardLogger()})
	defer func() { cancel(); l.wait() }()
	waitFor(t, func() bool { return !l.LastSuccess().IsZero() })
	check := func(step string, want map[string]bool) {
		t.Helper()
		for sid, w := range want {
			if got := l.Revoked(sid); got != w {
				t.Errorf("%s: Revoked(%q) = %v, want %v", step, sid, got, w)
			}
		}
	}
	check("first poll", map[string]bool{"a": true, "b": true, "c": false})

	// Unchanged feed: a 304, nothing lost.
	if err := l.Poll(ctx); err != nil || feed.notModified.Load() != 1 {
		t.Fatalf("poll: %v, 304s %d", err, feed.notModified.Load())
	}
	check("304", map[string]bool{"a": true, "b": true})

	// The feed's window moves on: entries that left it are kept until
	// until + leeway.
	feed.set(`{"revoked":[{"sid":"c","until":`+itoa(now+600)+`}]}`, false)
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	check("merged", map[string]bool{"a": true, "b": true, "c": true})

	// The feed goes down: the set stays in force.
	feed.set("", true)
	if err := l.Poll(ctx); err == nil || l.LastPollError() == nil {
		t.Fatal("poll of a down feed succeeded")
	}
	check("feed down", map[string]bool{"a": true, "b": true, "c": true})

	// b's tokens have all expired (until 60 s + 30 s leeway): it is dropped.
	clk.Add(91 * time.Second)
	if err := l.Poll(ctx); err == nil {
		t.Fatal("poll of a down feed succeeded")
	}
	check("aged", map[string]bool{"a": true, "b": false, "c": true})
	if l.Len() != 2 {
		t.Fatalf("Len %d, want 2", l.Len())
	}

	// Garbage keeps the set too.
	feed.set(`<html>`, false)
	if err := l.Poll(ctx); err == nil {
		t.Fatal("garbage accepted")
	}
	check("garbage", map[string]bool{"a": true, "c": true})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRevocationListPolls(t *testing.T) {
	feed := newFeedServer(t, `{"revoked":[]}`)
	ctx, cancel := context.WithCancel(context.Background())
	l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: 10 * time.Millisecond, Logger: discardLogger()})
	waitFor(t, func() bool { return feed.polls.Load() >= 3 })
	cancel()
	l.wait()
}

func TestVerifierWithRevocationList(t *testing.T) {
	ed := newEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.jwk())
	feed := newFeedServer(t, `{"revoked":[]}`)
	clk := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: time.Hour, Now: clk.Now, Logger: discardLogger()})
	defer func() { cancel(); l.wait() }()
	v := newTestVerifier(t, ks, clk, func(c *Config) { c.Revoked = l })
	tok := ed.mint(t, validClaims())
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	feed.set(`{"revoked":[{"sid":"s_1","until":`+itoa(testEpoch.Unix()+300)+`}]}`, false)
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); Reason(err) != "revoked" {
		t.Fatalf("cached token of a revoked session: %v", err)
	}
}
