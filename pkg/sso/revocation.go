package sso

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// maxFeedBytes bounds the revocation feed: ten minutes of revocations fit
// many times over.
const maxFeedBytes = 8 << 20

// RevocationOptions configure a RevocationList. Zero values take the defaults.
type RevocationOptions struct {
	// Client fetches the feed; default localhost.Client(10 * time.Second).
	Client *http.Client
	// Interval between polls; default 10s (SPEC.md's --revocation-poll).
	Interval time.Duration
	// Leeway keeps each sid this long past its until, matching the
	// verifier's leeway on exp; zero means DefaultLeeway, NoLeeway none.
	Leeway time.Duration
	// Now is the clock used to forget old entries; default time.Now.
	Now func() time.Time
	// Logger gets poll failures; default slog.Default().
	Logger *slog.Logger
}

// RevocationList is the set of revoked sessions, kept from the issuer's
// /sessions/revoked feed. Each poll merges the feed's window into the set
// (nothing is dropped because it left the window) and keeps every sid until
// its until plus the leeway, when every token of it has expired anyway. When
// the feed is unreachable the last set stays in force.
type RevocationList struct {
	url      string
	client   *http.Client
	interval time.Duration
	leeway   time.Duration
	now      func() time.Time
	log      *slog.Logger

	set atomic.Pointer[map[string]int64] // sid → until (Unix seconds); copy-on-write

	mu          sync.Mutex // serializes polls
	etag        string
	lastErr     error
	lastSuccess time.Time
	wg          sync.WaitGroup
}

// NewRevocationList polls feedURL (the discovery document's
// canopy_revocation_uri) at once and then every Interval until ctx ends.
func NewRevocationList(ctx context.Context, feedURL string, opts RevocationOptions) *RevocationList {
	l := &RevocationList{
		url:      feedURL,
		client:   opts.Client,
		interval: opts.Interval,
		leeway:   opts.Leeway,
		now:      opts.Now,
		log:      opts.Logger,
	}
	if l.client == nil {
		l.client = localhost.Client(10 * time.Second)
	}
	if l.interval <= 0 {
		l.interval = 10 * time.Second
	}
	switch {
	case l.leeway == 0:
		l.leeway = DefaultLeeway
	case l.leeway < 0:
		l.leeway = 0
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	empty := map[string]int64{}
	l.set.Store(&empty)
	l.wg.Add(1)
	go l.run(ctx)
	return l
}

// Revoked reports whether sid is in the set. It takes no lock.
func (l *RevocationList) Revoked(sid string) bool {
	_, ok := (*l.set.Load())[sid]
	return ok
}

// Len returns the number of sessions in the set.
func (l *RevocationList) Len() int { return len(*l.set.Load()) }

// LastPollError returns the last poll's error, or nil when it succeeded.
func (l *RevocationList) LastPollError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// LastSuccess returns when a poll last succeeded (zero: never).
func (l *RevocationList) LastSuccess() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSuccess
}

// Poll reads the feed now and merges it; tests use it to avoid waiting.
func (l *RevocationList) Poll(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.poll(ctx)
	l.lastErr = err
	if err != nil {
		// Entries still age out while the feed is down.
		l.merge(nil)
		return err
	}
	l.lastSuccess = l.now()
	return nil
}

func (l *RevocationList) poll(ctx context.Context) error {
	res, err := fetchJSON(ctx, l.client, l.url, l.etag, maxFeedBytes)
	if err != nil {
		return err
	}
	if res.notModified {
		l.merge(nil)
		return nil
	}
	var feed wire.RevokedFeed
	if err := json.Unmarshal(res.body, &feed); err != nil {
		return fmt.Errorf("GET %s: not a revocation feed: %w", l.url, err)
	}
	add := make(map[string]int64, len(feed.Revoked))
	for _, r := range feed.Revoked {
		if r.SID != "" && r.Until > add[r.SID] {
			add[r.SID] = r.Until
		}
	}
	l.etag = res.etag
	l.merge(add)
	return nil
}

// merge installs a new set: the old one plus add, less entries past
// until + leeway. The set is replaced, never changed, so Revoked needs no lock.
func (l *RevocationList) merge(add map[string]int64) {
	cutoff := l.now().Add(-l.leeway).Unix()
	old := *l.set.Load()
	if !needsMerge(old, add, cutoff) {
		return
	}
	next := make(map[string]int64, len(old)+len(add))
	maps.Copy(next, old)
	for sid, until := range add {
		if until > next[sid] {
			next[sid] = until
		}
	}
	for sid, until := range next {
		if until < cutoff {
			delete(next, sid)
		}
	}
	l.set.Store(&next)
}

// needsMerge reports whether add brings anything new or an entry has aged
// out, so an unchanged feed costs no copy.
func needsMerge(old, add map[string]int64, cutoff int64) bool {
	for sid, until := range add {
		if cur, ok := old[sid]; (!ok || until > cur) && until >= cutoff {
			return true
		}
	}
	for _, until := range old {
		if until < cutoff {
			return true
		}
	}
	return false
}

func (l *RevocationList) run(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		if err := l.Poll(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("sso: revocation feed poll failed; keeping the last set", "url", l.url, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait blocks until the poller has stopped (after ctx ends).
func (l *RevocationList) wait() { l.wg.Wait() }
