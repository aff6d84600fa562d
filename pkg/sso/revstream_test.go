package sso

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// TestRevocationStreamFallback: with the stream refused (503), the list
// reads the window once and then polls incrementally from its cursor; once
// the stream answers, it resumes from the cursor with Last-Event-ID and
// applies each entry as it arrives.
func TestRevocationStreamFallback(t *testing.T) {
	until := time.Now().Add(time.Hour).Unix()
	var streamUp atomic.Bool
	var mu sync.Mutex
	var afters, lastIDs []string
	mux := http.NewServeMux()
	mux.HandleFunc("/feed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		after := r.URL.Query().Get(wire.QueryAfter)
		mu.Lock()
		afters = append(afters, after)
		mu.Unlock()
		switch after {
		case "":
			fmt.Fprint(w, `{"revocations":[{"sid":"old","until":`, until, `}],"cursor":"5"}`)
		case "5":
			fmt.Fprint(w, `{"revocations":[{"sid":"polled","until":`, until, `}],"cursor":"6"}`)
		default:
			fmt.Fprintf(w, `{"revocations":[],"cursor":%q}`, after)
		}
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		if !streamUp.Load() {
			http.Error(w, "full", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: ready\nid: 6\ndata: {}\n\n: heartbeat\n\nevent: revocation\nid: 7\ndata: {\"sid\":\"streamed\",\"until\":%d}\n\n", until)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var l *RevocationList

	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); l.wait() }()
	l = NewRevocationList(ctx, srv.URL+"/feed", RevocationOptions{UserLevel: true, StreamURL: srv.URL + "/stream",
		Interval: 20 * time.Millisecond, Logger: ssotest.DiscardLogger()})
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitUntil("the polled entry", func() bool { return l.Revoked("old") && l.Revoked("polled") })
	mu.Lock()
	if afters[0] != "" || !slices.Contains(afters, "5") {
		t.Errorf("polls asked after %q; want the whole window first, then after=5", afters)
	}
	mu.Unlock()
	streamUp.Store(true)
	waitUntil("the streamed entry", func() bool { return l.Revoked("streamed") && l.StreamConnected() })
	mu.Lock()
	if lastIDs[0] != "6" {
		t.Errorf("the stream resumed with Last-Event-ID %q, want the polled cursor 6", lastIDs[0])
	}
	mu.Unlock()
}
