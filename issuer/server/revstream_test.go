package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// streamConn is one open revocation stream.
type streamConn struct {
	resp   *http.Response
	r      *wire.StreamReader
	cancel context.CancelFunc
	beats  chan struct{}
}

func (h *harness) openStream(t *testing.T, lastID string) (*streamConn, *http.Response) {
	t.Helper()
	h.waitHubStarted(t)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.ts.URL+wire.PathRevocationStream, nil)
	req.Host = h.host
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		return nil, resp
	}
	sc := &streamConn{resp: resp, r: wire.NewStreamReader(resp.Body), cancel: cancel, beats: make(chan struct{}, 100)}
	sc.r.OnComment = func() {
		select {
		case sc.beats <- struct{}{}:
		default:
		}
	}
	t.Cleanup(sc.close)
	return sc, resp
}

func (sc *streamConn) close() { sc.cancel(); sc.resp.Body.Close() }

// next reads the next event, failing the test after 10 s.
func (sc *streamConn) next(t *testing.T) wire.StreamEvent {
	t.Helper()
	type result struct {
		ev  wire.StreamEvent
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := sc.r.Next()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("stream: %v", r.err)
		}
		return r.ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return wire.StreamEvent{}
}

func (h *harness) liveSession(t *testing.T, userID, sid string) {
	t.Helper()
	now := h.clock.Now()
	if err := h.store.CreateSession(t.Context(), store.Session{ID: sid, UserID: userID, CreatedAt: now, AuthTime: now,
		ExpiresAt: now.Add(time.Hour), LastUsedAt: now, AccessUntil: now.Add(5 * time.Minute)}, "hash-"+sid); err != nil {
		t.Fatal(err)
	}
}

func wantRevocation(t *testing.T, ev wire.StreamEvent, sid string) {
	t.Helper()
	var r wire.Revocation
	if ev.Type != wire.StreamEventRevocation || json.Unmarshal([]byte(ev.Data), &r) != nil || r.SID != sid || ev.ID == "" {
		t.Fatalf("event %+v, want the revocation of %s with an id", ev, sid)
	}
}

// TestRevocationStream: a revocation committed through the server reaches
// an open stream with a cursor id; a stream resumed with Last-Event-ID gets
// what it missed, once; heartbeats flow on an idle stream; closing the
// server ends the stream.
func TestRevocationStream(t *testing.T) {
	h := newHarness(t, options{mutate: func(c *config.Config) { c.StreamHeartbeat = 100 * time.Millisecond }})
	u := h.createUser("alice", "correct horse battery")
	for i := range 3 {
		h.liveSession(t, u.ID, fmt.Sprintf("s%d", i))
	}
	sc, _ := h.openStream(t, "")
	ready := sc.next(t)
	if ready.Type != wire.StreamEventReady || ready.ID == "" {
		t.Fatalf("first event %+v, want %q with the cursor", ready, wire.StreamEventReady)
	}
	if got := sc.resp.Header.Get("X-Accel-Buffering"); got != "no" {
		t.Errorf("X-Accel-Buffering = %q, want no", got)
	}
	if err := h.srv.store.RevokeSession(t.Context(), "s0", store.ReasonLogout, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	ev := sc.next(t)
	wantRevocation(t, ev, "s0")
	go func() { _, _ = sc.r.Next() }() // reads the heartbeats until the stream closes
	select {
	case <-sc.beats:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat on an idle stream")
	}
	sc.close()

	// Missed while disconnected: s1 and s2, then the stream goes on live.
	for _, sid := range []string{"s1", "s2"} {
		if err := h.srv.store.RevokeSession(t.Context(), sid, store.ReasonLogout, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resumed, _ := h.openStream(t, ev.ID)
	if r := resumed.next(t); r.Type != wire.StreamEventReady || r.ID != ev.ID {
		t.Fatalf("resumed stream starts with %+v, want ready at %s", r, ev.ID)
	}
	wantRevocation(t, resumed.next(t), "s1")
	wantRevocation(t, resumed.next(t), "s2")

	// The incremental feed from the same cursor gives the same entries.
	var feed wire.RevocationFeed
	if status := h.getJSON(t, wire.PathRevocationV2+"?after="+ev.ID, &feed); status != http.StatusOK {
		t.Fatalf("incremental poll: %d", status)
	}
	if len(feed.Revocations) != 2 || feed.Revocations[1].SID != "s2" || feed.More {
		t.Errorf("incremental poll after %s: %+v", ev.ID, feed)
	}
	var empty wire.RevocationFeed
	if status := h.getJSON(t, wire.PathRevocationV2+"?after="+feed.Cursor, &empty); status != http.StatusOK || len(empty.Revocations) != 0 || empty.Cursor != feed.Cursor {
		t.Errorf("poll with nothing new: %d %+v; want nothing and the same cursor", status, empty)
	}
	var full wire.RevocationFeed
	if status := h.getJSON(t, wire.PathRevocationV2, &full); status != http.StatusOK || full.Cursor != feed.Cursor {
		t.Errorf("full feed: %d, cursor %q; want the head %q", status, full.Cursor, feed.Cursor)
	}

	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resumed.resp.Body); done <- err }()
	h.srv.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived Server.Close")
	}
}

// TestRevocationStreamBadCursor: a cursor that is not one is refused, and
// one ahead of the log (another database) is 410 so the reader starts over.
func TestRevocationStreamBadCursor(t *testing.T) {
	h := newHarness(t, options{})
	for _, tc := range []struct {
		name, cursor string
		want         int
	}{
		{"not a number", "abc", http.StatusBadRequest},
		{"negative", "-1", http.StatusBadRequest},
		{"too long", "123456789012345678901234", http.StatusBadRequest},
		{"ahead of the log", "99999", http.StatusGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, resp := h.openStream(t, tc.cursor); resp.StatusCode != tc.want {
				t.Errorf("stream with Last-Event-ID %q: %d, want %d", tc.cursor, resp.StatusCode, tc.want)
			}
			if status := h.getJSON(t, wire.PathRevocationV2+"?after="+tc.cursor, nil); status != tc.want {
				t.Errorf("poll after %q: %d, want %d", tc.cursor, status, tc.want)
			}
		})
	}
}

// TestRevocationStreamLimits: one client address cannot hold more than its
// share, the instance no more than its cap; a refusal is 503 with
// Retry-After, and a slot freed is taken again.
func TestRevocationStreamLimits(t *testing.T) {
	h := newHarness(t, options{streamMaxSubs: 3, streamMaxPer: 2})
	a, _ := h.openStream(t, "")
	a.next(t)
	b, _ := h.openStream(t, "")
	b.next(t)
	_, resp := h.openStream(t, "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream of one client: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	a.close()
	deadline := time.Now().Add(5 * time.Second)
	for h.srv.hub.count() > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c, _ := h.openStream(t, ""); c == nil {
		t.Fatal("a freed slot was not given out again")
	}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n <= 0 {
		t.Errorf("Retry-After %q is not a delay in seconds", resp.Header.Get("Retry-After"))
	}
}

// getJSON GETs path from the issuer and decodes a 200 body into v (when not nil).
func (h *harness) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.ts.URL+path, nil)
	req.Host = h.host
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// waitHubStarted waits until the hub has read the log head, which it does
// in the background after New: until then a stream is refused with 503,
// as it should be, but that is not what these tests are about.
func (h *harness) waitHubStarted(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h.srv.hub.mu.Lock()
		started := h.srv.hub.started
		h.srv.hub.mu.Unlock()
		if started {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation hub did not read the log head within 10 s")
		}
	}
}
