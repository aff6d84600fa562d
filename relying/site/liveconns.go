package site

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// liveConns are the proxied requests in flight (WebSocket and other
// upgraded connections, streamed responses), each with a context that is
// cancelled when the revocation set gains an entry for its session:
// httputil.ReverseProxy then closes the upgraded connection, or stops
// copying the response. A request's own context is not enough: it ends only
// when the client goes. The context is also cancelled at the session's
// absolute end (the token's session_exp), past which no token of it is
// valid and a connection opened with one must not live on.
type liveConns struct {
	now   func() time.Time
	mu    sync.Mutex
	next  uint64
	bySID map[string]map[uint64]*liveConn
	bySub map[string]map[uint64]*liveConn
}

type liveConn struct {
	claims *sso.Claims
	cancel context.CancelFunc
}

func newLiveConns(now func() time.Time) *liveConns {
	if now == nil {
		now = time.Now
	}
	return &liveConns{now: now, bySID: map[string]map[uint64]*liveConn{}, bySub: map[string]map[uint64]*liveConn{}}
}

// track registers r, admitted with claims c, and returns the request to
// proxy and a func to call when it is done. revoked is asked once after
// registering, so a revocation merged between the check that admitted r and
// the registration still closes it.
func (l *liveConns) track(r *http.Request, c *sso.Claims, revoked func(*sso.Claims) bool) (*http.Request, func()) {
	ctx, cancel := context.WithCancel(r.Context())
	lc := &liveConn{claims: c, cancel: cancel}
	l.mu.Lock()
	id := l.next
	l.next++
	add(l.bySID, c.SessionID, id, lc)
	add(l.bySub, c.Subject, id, lc)
	l.mu.Unlock()
	if revoked(c) {
		cancel()
	}
	stop := func() bool { return false }
	if c.SessionExpiry > 0 {
		stop = time.AfterFunc(time.Unix(c.SessionExpiry, 0).Sub(l.now()), cancel).Stop
	}
	return r.WithContext(ctx), func() {
		stop()
		l.mu.Lock()
		remove(l.bySID, c.SessionID, id)
		remove(l.bySub, c.Subject, id)
		l.mu.Unlock()
		cancel()
	}
}

// revoke cancels every tracked request that r revokes; it is the
// sso.Client's OnRevoke hook, called once per poll that adds entries.
func (l *liveConns) revoke(r sso.Revocations) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sid := range r.SIDs {
		for _, lc := range l.bySID[sid] {
			lc.cancel()
		}
	}
	for _, u := range r.Users {
		for _, lc := range l.bySub[u.Subject] {
			if r.Matches(lc.claims) {
				lc.cancel()
			}
		}
	}
}

func add(m map[string]map[uint64]*liveConn, key string, id uint64, lc *liveConn) {
	if m[key] == nil {
		m[key] = map[uint64]*liveConn{}
	}
	m[key][id] = lc
}

func remove(m map[string]map[uint64]*liveConn, key string, id uint64) {
	delete(m[key], id)
	if len(m[key]) == 0 {
		delete(m, key)
	}
}
