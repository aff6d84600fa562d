package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// Defaults of the revocation stream.
const (
	// DefaultStreamHeartbeat is the gap between heartbeat comments on an
	// idle stream: under wire.StreamMaxHeartbeat and under the 60 s idle
	// timeouts proxies default to.
	DefaultStreamHeartbeat = 10 * time.Second
	// DefaultStreamMaxSubscribers bounds the streams one instance holds.
	DefaultStreamMaxSubscribers = 2000
	// DefaultStreamMaxPerClient bounds the streams of one client address,
	// so one client cannot take every slot and push the others to polling.
	DefaultStreamMaxPerClient = 32
	// hubRecheck is how often the hub reads the log without being woken:
	// revocations committed by another process on the same SQLite file
	// (`issuer user disable`). A read with nothing new is one index lookup
	// (BenchmarkCLIRevocationToStream measures the idle CPU), so it runs
	// often enough that such a revocation streams out in well under a
	// second. With a watcher (PostgreSQL NOTIFY, which is re-read on every
	// reconnection) it is only a safety net: hubRecheckWatched.
	hubRecheck        = 250 * time.Millisecond
	hubRecheckWatched = 30 * time.Second
	// hubPage bounds one read of the log, and one incremental poll.
	hubPage = 1000
	// subscriberBuffer is how many commits a subscriber may fall behind
	// before it is cut off; it then resumes with Last-Event-ID.
	subscriberBuffer = 256
)

// errStreamFull: no stream slot is free, for the instance or the client.
var errStreamFull = errors.New("revocation stream: no free slot")

// streamEvent is one revocation, encoded once for every subscriber.
type streamEvent struct {
	pos  int64
	data []byte // a wire.Revocation as JSON
}

// subscriber is one open stream.
type subscriber struct {
	addr string
	ch   chan []streamEvent
	// cut is closed when the subscriber fell too far behind.
	cut chan struct{}
}

// revHub follows the revocation log and fans each new entry out to the
// instance's stream subscribers: one read of the database per commit,
// however many subscribers. It is woken by commits of this instance, by the
// store's watcher (other instances), and every hubRecheck.
type revHub struct {
	log        store.RevocationLog
	logger     *slog.Logger
	recheck    time.Duration
	maxSubs    int
	maxPerAddr int

	wakeCh chan struct{}
	done   chan struct{} // closed by close: every stream ends
	once   sync.Once

	mu      sync.Mutex
	head    int64 // last position fanned out
	started bool  // head was read from the store
	subs    map[*subscriber]struct{}
	perAddr map[string]int
}

func newRevHub(log store.RevocationLog, logger *slog.Logger, maxSubs, maxPerAddr int) *revHub {
	return &revHub{log: log, logger: logger, recheck: hubRecheck, maxSubs: maxSubs, maxPerAddr: maxPerAddr,
		wakeCh: make(chan struct{}, 1), done: make(chan struct{}),
		subs: map[*subscriber]struct{}{}, perAddr: map[string]int{}}
}

// wake asks the hub to read the log; wakes while it reads collapse into one.
func (h *revHub) wake() {
	select {
	case h.wakeCh <- struct{}{}:
	default:
	}
}

// close ends every stream and the hub's loop.
func (h *revHub) close() { h.once.Do(func() { close(h.done) }) }

// run follows the log until ctx ends or close is called.
func (h *revHub) run(ctx context.Context) {
	t := time.NewTicker(h.recheck)
	defer t.Stop()
	for {
		h.advance(ctx)
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-h.wakeCh:
		case <-t.C:
		}
	}
}

// advance reads what the log gained since the head and sends it out.
func (h *revHub) advance(ctx context.Context) {
	h.mu.Lock()
	started, head := h.started, h.head
	h.mu.Unlock()
	if !started {
		pos, err := h.log.RevocationHead(ctx)
		if err != nil {
			h.logger.Warn("revocation stream: reading the log head failed; retrying", "err", err)
			return
		}
		h.mu.Lock()
		h.head, h.started = pos, true
		h.mu.Unlock()
		return
	}
	for {
		list, err := h.log.RevocationsAfter(ctx, head, hubPage)
		if err != nil {
			h.logger.Warn("revocation stream: reading the log failed; retrying", "err", err)
			return
		}
		if len(list) == 0 {
			return
		}
		events := make([]streamEvent, len(list))
		for i, l := range list {
			data, _ := json.Marshal(wireRevocation(l)) // plain strings and numbers: cannot fail
			events[i] = streamEvent{pos: l.Pos, data: data}
		}
		head = list[len(list)-1].Pos
		h.publish(events, head)
		if len(list) < hubPage {
			return
		}
	}
}

// publish hands events to every subscriber without waiting: one whose
// buffer is full is cut off and resumes from its last event id.
func (h *revHub) publish(events []streamEvent, head int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.head = head
	for sub := range h.subs {
		select {
		case sub.ch <- events:
		default:
			h.dropLocked(sub)
			close(sub.cut)
		}
	}
}

// subscribe takes a slot for a client address and returns the subscriber
// with the position from which it receives commits (events after it).
func (h *revHub) subscribe(addr string) (*subscriber, int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		return nil, 0, errors.New("revocation stream: the log head is not known yet")
	}
	if len(h.subs) >= h.maxSubs || h.perAddr[addr] >= h.maxPerAddr {
		return nil, 0, errStreamFull
	}
	sub := &subscriber{addr: addr, ch: make(chan []streamEvent, subscriberBuffer), cut: make(chan struct{})}
	h.subs[sub] = struct{}{}
	h.perAddr[addr]++
	return sub, h.head, nil
}

// unsubscribe frees the slot; a subscriber already cut off is a no-op.
func (h *revHub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(sub)
}

func (h *revHub) dropLocked(sub *subscriber) {
	if _, ok := h.subs[sub]; !ok {
		return
	}
	delete(h.subs, sub)
	if h.perAddr[sub.addr]--; h.perAddr[sub.addr] <= 0 {
		delete(h.perAddr, sub.addr)
	}
}

// count returns how many streams are open.
func (h *revHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// knownHead returns the last position the hub fanned out.
func (h *revHub) knownHead() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

// wireRevocation is a logged revocation as the feed and the stream publish it.
func wireRevocation(l store.LoggedRevocation) wire.Revocation {
	if l.SID != "" {
		return wire.Revocation{SID: l.SID, Until: l.Until.Unix()}
	}
	return wire.Revocation{Subject: l.UserID, Claim: wire.ClaimIssuedAt, Before: l.Before.Unix(),
		ExceptSID: l.ExceptSID, Until: l.Until.Unix()}
}

// formatCursor and parseCursor are the feed's cursor as text: the position
// in decimal. A cursor is never negative.
func formatCursor(pos int64) string { return strconv.FormatInt(pos, 10) }

func parseCursor(s string) (int64, bool) {
	pos, err := strconv.ParseInt(s, 10, 64)
	return pos, err == nil && pos >= 0 && len(s) <= 19
}
