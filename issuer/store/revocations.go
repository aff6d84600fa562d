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
