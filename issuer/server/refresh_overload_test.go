package server

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// TestRefreshOverload: when the SQLite group writer's queue is full, both
// refresh flows answer 503 with Retry-After at once, without blocking: the
// browser navigation a page that retries by itself, fetch() JSON. The
// refresh cookie is untouched and works once the queue drains. The queue
// fills for real: another connection holds SQLite's write lock, as another
// process would, while two rotations wait.
func TestRefreshOverload(t *testing.T) {
	h := newHarness(t, options{group: sqlstore.GroupCommit{Queue: 1, RetryAfter: 2 * time.Second}})
	h.createUser("alice", "correct horse battery")
	b := h.browser()
	b.login("alice", "correct horse battery")

	db, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", Path: h.cfg.DB, RawQuery: "_txlock=immediate"}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	lock, err := db.Begin()
	if err != nil {
		t.Fatalf("BEGIN IMMEDIATE: %v", err)
	}
	var once sync.Once
	release := func() { once.Do(func() { _ = lock.Rollback() }) }
	defer release()

	// Two rotations in flight: one taken by the writer (waiting for the
	// lock), one filling the queue. Each from a copy of the browser.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		c := h.browser()
		for k, v := range b.cookies {
			c.cookies[k] = v
		}
		wg.Go(func() { codes[i] = c.do(request{method: http.MethodPost, target: "/refresh"}).StatusCode })
		deadline := time.Now().Add(5 * time.Second)
		for h.store.QueueDepth() != i && time.Now().Before(deadline) { // the first is taken, the second stays
			time.Sleep(time.Millisecond)
		}
		if i == 0 {
			time.Sleep(100 * time.Millisecond) // the writer is past its drain, in BEGIN
		}
	}
	if d := h.store.QueueDepth(); d != 1 {
		t.Fatalf("queue depth %d, want 1 (full)", d)
	}

	t0 := time.Now()
	nav := b.do(request{target: "/refresh?return_to=" + url.QueryEscape(h.cfg.URL+"/"),
		header: http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"navigate"}}})
	api := b.do(request{method: http.MethodPost, target: "/refresh"})
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("overloaded answers took %v: they must not wait for the queue", took)
	}
	if nav.StatusCode != http.StatusServiceUnavailable || nav.Header.Get("Retry-After") != "2" ||
		!strings.Contains(nav.body, `<meta http-equiv="refresh" content="2">`) || nav.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /refresh overloaded: %d, Retry-After %q, body:\n%s", nav.StatusCode, nav.Header.Get("Retry-After"), nav.body)
	}
	var body struct {
		Error      string `json:"error"`
		RetryAfter int    `json:"retry_after"`
	}
	if api.StatusCode != http.StatusServiceUnavailable || api.Header.Get("Retry-After") != "2" ||
		json.Unmarshal([]byte(api.body), &body) != nil || body.Error != "overloaded" || body.RetryAfter != 2 {
		t.Errorf("POST /refresh overloaded: %d, Retry-After %q, body %s", api.StatusCode, api.Header.Get("Retry-After"), api.body)
	}

	release()
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusNoContent {
			t.Errorf("rotation %d in flight: %d, want 204 once the lock is released", i, c)
		}
	}
	// The 503s changed nothing: the browser's cookie converges (the
	// rotations above rotated it) and the session lives on.
	if r := b.do(request{method: http.MethodPost, target: "/refresh"}); r.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /refresh after the queue drained: %d %s", r.StatusCode, r.body)
	}
}
