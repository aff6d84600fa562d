package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// CreateSession inserts sess with refreshHash as its current token, both in one
// transaction. The user is checked in the same transaction (under a share
// lock where rows are locked), so a sign-in that races with disabling or
// deleting the account cannot leave a live session behind: the change waits
// for the sign-in to commit and then revokes its session, or the sign-in
// waits for the change and sees it. A missing or deleted user is
// store.ErrNotFound, a disabled one store.ErrSessionEnded. A reused session
// id or token hash is store.ErrConflict. UserAgent and IP are cleaned
// (cleanText).
func (s *Store) CreateSession(ctx context.Context, sess store.Session, refreshHash string) error {
	if sess.ID == "" || refreshHash == "" {
		return s.d.errorf("create session: empty id or refresh hash")
	}
	return s.inTx(ctx, "create session", func(tx *sqlx.Tx) error {
		var disabled bool
		if err := s.getTx(ctx, tx, "create session", fmt.Sprintf("user %q", sess.UserID), &disabled, s.q.UserDisabled, sess.UserID); err != nil {
			return err
		}
		if disabled {
			return s.d.errorf("create session: user %q is disabled: %w", sess.UserID, store.ErrSessionEnded)
		}
		what := fmt.Sprintf("%q", sess.ID)
		if err := s.insert(ctx, tx, "create session", what, s.q.InsertSession,
			sess.ID, sess.UserID, ToDB(sess.CreatedAt), ToDB(sess.AuthTime), ToDB(sess.ExpiresAt),
			ToDB(sess.LastUsedAt), ToDB(sess.AccessUntil), ToNullDB(sess.RevokedAt), sess.RevokeReason,
			cleanText(sess.UserAgent), cleanText(sess.IP), refreshHash); err != nil {
			return err
		}
		return s.insert(ctx, tx, "create session: refresh token", what, s.q.InsertRefreshToken,
			refreshHash, sess.ID, ToDB(sess.CreatedAt))
	})
}

// Session returns a session by id, whatever its state.
func (s *Store) Session(ctx context.Context, sid string) (store.Session, error) {
	return s.session(ctx, "session", fmt.Sprintf("%q", sid), s.q.SessionByID, sid)
}

// SessionByRefresh returns the session that issued the token with this hash,
// current or superseded, whatever its state.
func (s *Store) SessionByRefresh(ctx context.Context, hash string) (store.Session, error) {
	return s.session(ctx, "session by refresh token", "", s.q.SessionByRefresh, hash)
}

func (s *Store) session(ctx context.Context, op, what, query, arg string) (store.Session, error) {
	var r SessionRow
	if err := s.get(ctx, op, what, &r, query, arg); err != nil {
		return store.Session{}, err
	}
	return r.Session(), nil
}

// ListSessions returns the user's sessions still active at now, most recently
// used first. The filter is store.Session.Active written as SQL.
func (s *Store) ListSessions(ctx context.Context, userID string, now time.Time, idle time.Duration) ([]store.Session, error) {
	// With no idle limit, any last use counts: compare against the minimum.
	usedAfter := int64(math.MinInt64)
	if idle > 0 {
		usedAfter = ToDB(now.Add(-idle))
	}
	rows, err := list[SessionRow](ctx, s, "list sessions", s.q.ActiveSessions, userID, ToDB(now), usedAfter)
	return Convert(rows, SessionRow.Session), err
}

// RevokeSession ends one session. A session already revoked keeps its first
// time and reason, which is what the audit trail and the feed should show.
func (s *Store) RevokeSession(ctx context.Context, sid, reason string, now time.Time) error {
	return s.inTx(ctx, "revoke session", func(tx *sqlx.Tx) error {
		n, err := s.exec(ctx, tx, "revoke session", s.q.RevokeSession, ToDB(now), reason, sid)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := s.enqueueSession(ctx, tx, sid, reason, now); err != nil {
				return err
			}
			return s.logSession(ctx, tx, sid, now)
		}
		var one int
		return s.getTx(ctx, tx, "revoke session", fmt.Sprintf("%q", sid), &one, s.q.SessionExists, sid)
	})
}

// RevokeUserSessions ends every session of the user except exceptSID.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, exceptSID, reason string, now time.Time) error {
	return s.inTx(ctx, "revoke user sessions", func(tx *sqlx.Tx) error {
		return s.revokeUserSessions(ctx, tx, userID, exceptSID, reason, now)
	})
}

// revokeUserSessions is the shared step of every user change that ends
// sessions; it runs in the caller's transaction.
func (s *Store) revokeUserSessions(ctx context.Context, tx *sqlx.Tx, userID, exceptSID, reason string, now time.Time) error {
	entry, err := s.recordUserRevocation(ctx, tx, userID, exceptSID, now)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, "revoke user sessions", s.q.RevokeUserSessions, ToDB(now), reason, userID, exceptSID); err != nil {
		return err
	}
	if err := s.enqueueUser(ctx, tx, userID, exceptSID, reason, now); err != nil {
		return err
	}
	return s.logUser(ctx, tx, userID, exceptSID, entry, now)
}

// RevokedSince lists the sessions revoked early whose last access token is
// still valid after since (AccessUntil > since), ordered by id, bytewise in
// every database, so that the same set always serialises the same way (the
// feed's ETag), whichever instance or backend answers.
func (s *Store) RevokedSince(ctx context.Context, since time.Time) ([]store.Revoked, error) {
	rows, err := list[RevokedRow](ctx, s, "revoked since", s.q.RevokedSince, ToDB(since))
	return Convert(rows, RevokedRow.Revoked), err
}

// Sweep deletes at most limit sessions that ended (were revoked or reached
// their absolute expiry) before `before`, with their refresh tokens (ON DELETE
// CASCADE), in one bounded statement. A session is also kept while any of its
// access tokens is valid (access_until >= before), so a caller that passes a
// `before` no later than the revoked feed's window never drops a session the
// feed still has to publish. Where rows are locked, rows another transaction
// holds (a rotation, another instance's sweep) are skipped rather than waited
// for. Sessions that only went idle stay until their absolute expiry: the
// store does not know the idle TTL here.
func (s *Store) Sweep(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	b := ToDB(before)
	n, err := s.exec(ctx, s.db, "sweep", s.q.Sweep, b, b, b, limit)
	return int(n), err
}
