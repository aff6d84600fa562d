package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// feedTTL is how long a built feed is served before it is built again. A
// revocation this instance commits rebuilds it at once; one committed by
// another instance reaches this instance's feed within feedTTL.
const feedTTL = time.Second

// DefaultFeedCap bounds the entries of the second revocation feed: at about
// 120 bytes an entry, 3 MiB, well under a relying service's read limit.
const DefaultFeedCap = 25_000

// feedCache holds the revocation feeds' bodies and ETags, so that a poll,
// 304 or not, costs no database query; concurrent rebuilds collapse into one.
type feedCache struct {
	ttl time.Duration
	now func() time.Time
	gen atomic.Uint64 // bumped after every revocation this instance commits

	mu    sync.Mutex // serializes rebuilds
	feeds map[string]*builtFeed
}

type builtFeed struct {
	body []byte
	etag string
	gen  uint64
	at   time.Time
}

func newFeedCache(now func() time.Time) *feedCache {
	return &feedCache{ttl: feedTTL, now: now, feeds: map[string]*builtFeed{}}
}

// invalidate marks every feed stale; called after a revocation commits.
func (c *feedCache) invalidate() { c.gen.Add(1) }

// get returns the named feed, rebuilding it with build when it is stale. The
// generation is read before the build: a revocation committed during it
// makes the result stale at once.
func (c *feedCache) get(ctx context.Context, name string, build func(context.Context) (any, error)) (body []byte, etag string, err error) {
	fresh := func(f *builtFeed) bool {
		if f == nil || f.gen != c.gen.Load() {
			return false
		}
		age := c.now().Sub(f.at)
		return age >= 0 && age < c.ttl
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.feeds[name]; fresh(f) {
		return f.body, f.etag, nil
	}
	gen := c.gen.Load()
	v, err := build(ctx)
	if err != nil {
		return nil, "", err
	}
	if body, err = json.Marshal(v); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	f := &builtFeed{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, gen: gen, at: c.now()}
	c.feeds[name] = f
	return f.body, f.etag, nil
}

// buildRevokedFeed is the first feed, /sessions/revoked: one entry per
// revoked session, as relying services deployed before the second feed read it.
func (s *Server) buildRevokedFeed(ctx context.Context) (any, error) {
	list, err := s.store.RevokedSince(ctx, s.now().Add(-revokedWindow))
	if err != nil {
		return nil, err
	}
	out := wire.RevokedFeed{Revoked: make([]wire.RevokedEntry, 0, len(list))}
	for _, r := range list {
		out.Revoked = append(out.Revoked, wire.RevokedEntry{SID: r.SID, Until: r.Until.Unix()})
	}
	return out, nil
}

// buildRevocationFeed is the second feed, /sessions/revocations: a user
// level change is one entry, so the feed grows with events, not sessions.
// Its cursor is the log head read before the window: whatever commits
// between the two reads is read again by the next incremental poll, never lost.
func (s *Server) buildRevocationFeed(ctx context.Context) (any, error) {
	head, err := s.store.RevocationHead(ctx)
	if err != nil {
		return nil, err
	}
	sessions, users, err := s.store.RevocationsSince(ctx, s.now().Add(-revokedWindow))
	if err != nil {
		return nil, err
	}
	entries := make([]wire.Revocation, 0, len(sessions)+len(users))
	for _, u := range users {
		entries = append(entries, wire.Revocation{Subject: u.UserID, Claim: wire.ClaimIssuedAt,
			Before: u.Before.Unix(), Until: u.Until.Unix(), ExceptSID: u.ExceptSID})
	}
	for _, r := range sessions {
		entries = append(entries, wire.Revocation{SID: r.SID, Until: r.Until.Unix()})
	}
	feed := capFeed(entries, s.feedCap)
	feed.Cursor = formatCursor(head)
	if len(feed.Revocations) < len(entries) {
		level := slog.LevelWarn
		if feed.Overflow {
			level = slog.LevelError
		}
		s.log.Log(ctx, level, "revocation feed over its cap", "entries", len(entries), "cap", s.feedCap,
			"served", len(feed.Revocations), "overflow", feed.Overflow)
	}
	return feed, nil
}

// capFeed bounds entries to limit (see wire.RevocationFeed): first each
// user's entries become one, with the latest before and until and no
// exception, which revokes more and never less; if that is still too many,
// the entries with the latest until are kept and Overflow says so.
func capFeed(entries []wire.Revocation, limit int) wire.RevocationFeed {
	if len(entries) <= limit {
		return wire.RevocationFeed{Revocations: entries}
	}
	merged := make([]wire.Revocation, 0, len(entries))
	bySub := map[string]int{}
	for _, e := range entries {
		if !e.IsUser() {
			merged = append(merged, e)
			continue
		}
		i, ok := bySub[e.Subject]
		if !ok {
			bySub[e.Subject] = len(merged)
			e.ExceptSID = ""
			merged = append(merged, e)
			continue
		}
		m := &merged[i]
		m.Before, m.Until, m.ExceptSID = max(m.Before, e.Before), max(m.Until, e.Until), ""
	}
	if len(merged) <= limit {
		return wire.RevocationFeed{Revocations: merged}
	}
	slices.SortStableFunc(merged, func(a, b wire.Revocation) int { return cmp.Compare(b.Until, a.Until) })
	merged = merged[:limit]
	// Back to the store's order, so the same set keeps the same ETag.
	slices.SortStableFunc(merged, func(a, b wire.Revocation) int {
		return cmp.Or(cmp.Compare(a.SID, b.SID), cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Before, b.Before))
	})
	return wire.RevocationFeed{Revocations: merged, Overflow: true}
}

// notifyingStore tells the feed cache about every revocation this instance
// commits, after it committed, so the next poll sees it without waiting
// for feedTTL. Every store method that ends sessions goes through it.
type notifyingStore struct {
	store.Store
	committed func()
}

func (n notifyingStore) done(err error) error {
	if err == nil || errors.Is(err, store.ErrReuse) {
		n.committed()
	}
	return err
}

func (n notifyingStore) SetDisabled(ctx context.Context, userID string, disabled bool, now time.Time) error {
	return n.done(n.Store.SetDisabled(ctx, userID, disabled, now))
}

func (n notifyingStore) SetPassword(ctx context.Context, userID, hash, keepSID string, now time.Time) error {
	return n.done(n.Store.SetPassword(ctx, userID, hash, keepSID, now))
}

func (n notifyingStore) DeleteUser(ctx context.Context, userID string, now time.Time) error {
	return n.done(n.Store.DeleteUser(ctx, userID, now))
}

func (n notifyingStore) RevokeSession(ctx context.Context, sid, reason string, now time.Time) error {
	return n.done(n.Store.RevokeSession(ctx, sid, reason, now))
}

func (n notifyingStore) RevokeUserSessions(ctx context.Context, userID, exceptSID, reason string, now time.Time) error {
	return n.done(n.Store.RevokeUserSessions(ctx, userID, exceptSID, reason, now))
}

// RotateRefresh revokes the session on reuse (store.ErrReuse).
func (n notifyingStore) RotateRefresh(ctx context.Context, r store.RotateRequest) (store.RotateResult, error) {
	res, err := n.Store.RotateRefresh(ctx, r)
	if errors.Is(err, store.ErrReuse) {
		n.committed()
	}
	return res, err
}
