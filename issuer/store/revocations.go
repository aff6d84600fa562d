package store

import (
	"context"
	"time"
)

// UserRevocation is one user-level revocation: every session the user had
// when it was recorded (disabled, deleted, password changed, signed out
// everywhere or elsewhere), in one row however many sessions that was.
type UserRevocation struct {
	UserID string
	// Before is a whole second: every token of the user issued before it
	// (iat < Before) is revoked. A session used in Before's own second is
	// listed on its own by RevocationsSince, since one of its tokens may
	// carry that iat.
	Before time.Time
	// Until is the latest exp of any access token issued in those sessions.
	Until time.Time
	// ExceptSID is the session that made the change, spared (may be empty).
	ExceptSID string
}

// RevocationStore publishes the second revocation feed.
type RevocationStore interface {
	// RevocationsSince lists what the feed publishes at since (now less
	// its window): the user-level revocations whose Until is after since,
	// ordered by user id, Before and ExceptSID; and the sessions revoked
	// early whose AccessUntil is after since and that no user-level
	// revocation covers (one covers a session when it names the session's
	// user, does not spare it, and every token of it predates Before and
	// expires by Until), ordered by id.
	RevocationsSince(ctx context.Context, since time.Time) ([]Revoked, []UserRevocation, error)
}

// LoggedRevocation is one row of the revocation log: a revocation at its
// position in commit order. It is a session (SID set) or a user-level entry
// (UserID and Before set), as in the feed.
type LoggedRevocation struct {
	// Pos is the cursor: every revocation committed after this one has a
	// larger Pos, whichever instance committed it.
	Pos       int64
	SID       string
	UserID    string
	Before    time.Time
	ExceptSID string
	Until     time.Time
}

// RevocationLog is the revocation feed in commit order, for incremental
// reads and the push stream.
type RevocationLog interface {
	// RevocationsAfter returns at most limit logged revocations whose Pos
	// is greater than after, in Pos order. A reader that saw Pos p has seen
	// every revocation committed before p's: positions are assigned in
	// commit order, so a later read never finds a smaller new one.
	RevocationsAfter(ctx context.Context, after int64, limit int) ([]LoggedRevocation, error)
	// RevocationHead returns the largest Pos logged, 0 when none.
	RevocationHead(ctx context.Context) (int64, error)
}

// RevocationWatcher is implemented by a store that can tell one issuer
// instance about revocations other instances commit (PostgreSQL's
// LISTEN/NOTIFY). WatchRevocations calls wake after every such commit and
// after every (re)connection, since notifications may have been missed
// while disconnected, until ctx ends; the caller re-reads the log.
type RevocationWatcher interface {
	WatchRevocations(ctx context.Context, wake func()) error
}
