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
		if root := store.RootSessionID(sess.ID); root != sess.ID {
			// Under a share lock where rows are locked: a revocation of the
			// root waits for this insert, and then revokes it too.
			var live int
			err := s.getTx(ctx, tx, "create session: root", fmt.Sprintf("%q", root), &live, s.rebind(qLiveRoot+s.d.LockShare),
				root, sess.UserID, ToDB(sess.CreatedAt))
			if err != nil {
				return s.d.errorf("create session: root %q has ended: %w", root, store.ErrSessionEnded)
			}
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

// RevokeSession ends one session and, for a root, the sessions linked to
// it (store.LinkedSessionID), found by their ids' prefix among the user's
// sessions. A session already revoked keeps its first time and reason,
// which is what the audit trail and the feed should show.
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
		}
		if n == 0 {
			var one int
			if err := s.getTx(ctx, tx, "revoke session", fmt.Sprintf("%q", sid), &one, s.q.SessionExists, sid); err != nil {
				return err
			}
		}
		var linked int64
		if store.RootSessionID(sid) == sid {
			prefix := sid + store.LinkSep
			if linked, err = s.exec(ctx, tx, "revoke session: linked", s.rebind(qRevokeLinked),
				ToDB(now), reason, sid, len(prefix), prefix); err != nil {
				return err
			}
		}
		if n == 0 && linked == 0 {
			return nil
		}
		if err := s.lockLog(ctx, tx); err != nil {
			return err
		}
		if n > 0 {
			if _, err := s.exec(ctx, tx, "revocation log", s.rebind(qLogSession), ToDB(now), sid, ToDB(now.Add(-logWindow))); err != nil {
				return err
			}
		}
		if linked > 0 {
			prefix := sid + store.LinkSep
			if _, err := s.exec(ctx, tx, "revocation log: linked", s.rebind(qLogLinked), ToDB(now), sid, len(prefix), prefix,
				ToDB(now), ToDB(now.Add(-logWindow))); err != nil {
				return err
			}
		}
		return s.pruneLog(ctx, tx, now)
	})
}

// The statements of linked sessions (store.LinkedSessionID), written once
// with '?': the live root of a new linked session, and a root's linked
// sessions, among its user's sessions (the user index), by id prefix.
const (
	qLiveRoot     = `SELECT 1 FROM sessions WHERE id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?`
	qRevokeLinked = `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
		WHERE user_id = (SELECT user_id FROM sessions WHERE id = ?) AND substr(id, 1, ?) = ? AND revoked_at IS NULL`
	qLogLinked = `INSERT INTO revocation_log (sid, until_at, created_at)
		SELECT id, access_until, ? FROM sessions
		WHERE user_id = (SELECT user_id FROM sessions WHERE id = ?) AND substr(id, 1, ?) = ? AND revoked_at = ? AND access_until > ?`
)

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
