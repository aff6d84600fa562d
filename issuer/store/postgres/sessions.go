package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// CreateSession inserts sess with refreshHash as its current token, both in one
// transaction. The user is checked in the same transaction under a FOR SHARE
// lock, so a sign-in that races with disabling or deleting the account cannot
// leave a live session behind: the change waits for the sign-in to commit and
// then revokes its session, or the sign-in waits for the change and sees it.
// A missing or deleted user is store.ErrNotFound, a disabled one
// store.ErrSessionEnded. A reused session id or token hash is store.ErrConflict.
func (s *Store) CreateSession(ctx context.Context, sess store.Session, refreshHash string) error {
	if sess.ID == "" || refreshHash == "" {
		return errors.New("postgres: create session: empty id or refresh hash")
	}
	return s.inTx(ctx, "create session", func(tx *sqlx.Tx) error {
		var disabled bool
		err := tx.GetContext(ctx, &disabled, queries.UserDisabled+` FOR SHARE`, sess.UserID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("postgres: create session: user %q: %w", sess.UserID, store.ErrNotFound)
		}
		if err != nil {
			return wrap("create session: user", err)
		}
		if disabled {
			return fmt.Errorf("postgres: create session: user %q is disabled: %w", sess.UserID, store.ErrSessionEnded)
		}
		_, err = tx.ExecContext(ctx, queries.InsertSession,
			sess.ID, sess.UserID, sqlstore.ToDB(sess.CreatedAt), sqlstore.ToDB(sess.AuthTime), sqlstore.ToDB(sess.ExpiresAt),
			sqlstore.ToDB(sess.LastUsedAt), sqlstore.ToDB(sess.AccessUntil), sqlstore.ToNullDB(sess.RevokedAt), sess.RevokeReason,
			sess.UserAgent, sess.IP, refreshHash)
		if isUnique(err) {
			return fmt.Errorf("postgres: create session %q: %w", sess.ID, store.ErrConflict)
		}
		if err != nil {
			return wrap("create session", err)
		}
		_, err = tx.ExecContext(ctx, queries.InsertRefreshToken,
			refreshHash, sess.ID, sqlstore.ToDB(sess.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("postgres: create session %q: refresh hash: %w", sess.ID, store.ErrConflict)
		}
		return wrapIf("create session: refresh token", err)
	})
}

// Session returns a session by id, whatever its state.
func (s *Store) Session(ctx context.Context, sid string) (store.Session, error) {
	return s.session(ctx, "session", queries.SessionByID, sid)
}

// SessionByRefresh returns the session that issued the token with this hash,
// current or superseded, whatever its state.
func (s *Store) SessionByRefresh(ctx context.Context, hash string) (store.Session, error) {
	return s.session(ctx, "session by refresh token", queries.SessionByRefresh, hash)
}

func (s *Store) session(ctx context.Context, op, query, arg string) (store.Session, error) {
	var r sqlstore.SessionRow
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &r, query, arg)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, wrap(op, err)
	}
	return r.Session(), nil
}

// ListSessions returns the user's sessions still active at now, most recently
// used first. The filter is store.Session.Active written as SQL.
func (s *Store) ListSessions(ctx context.Context, userID string, now time.Time, idle time.Duration) ([]store.Session, error) {
	// With no idle limit, any last use counts: compare against the minimum.
	usedAfter := int64(math.MinInt64)
	if idle > 0 {
		usedAfter = sqlstore.ToDB(now.Add(-idle))
	}
	var rows []sqlstore.SessionRow
	err := s.read(ctx, func() error {
		rows = nil
		return s.db.SelectContext(ctx, &rows, queries.ActiveSessions, userID, sqlstore.ToDB(now), usedAfter)
	})
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	return sqlstore.Convert(rows, sqlstore.SessionRow.Session), nil
}

// RevokeSession ends one session. A session already revoked keeps its first
// time and reason, which is what the audit trail and the feed should show.
func (s *Store) RevokeSession(ctx context.Context, sid, reason string, now time.Time) error {
	return s.inTx(ctx, "revoke session", func(tx *sqlx.Tx) error {
		var revoked bool
		// One statement that both revokes and tells a missing session from an
		// already revoked one: the CTE's UPDATE runs whether or not its rows
		// are read.
		err := tx.GetContext(ctx, &revoked, `WITH up AS (
				UPDATE sessions SET revoked_at = $1, revoke_reason = $2
				WHERE id = $3 AND revoked_at IS NULL RETURNING id)
			SELECT EXISTS (SELECT 1 FROM up) OR EXISTS (SELECT 1 FROM sessions WHERE id = $3)`,
			sqlstore.ToDB(now), reason, sid)
		if err != nil {
			return wrap("revoke session", err)
		}
		if !revoked {
			return fmt.Errorf("postgres: revoke session %q: %w", sid, store.ErrNotFound)
		}
		return nil
	})
}

// RevokeUserSessions ends every session of the user except exceptSID.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, exceptSID, reason string, now time.Time) error {
	return s.inTx(ctx, "revoke user sessions", func(tx *sqlx.Tx) error {
		return revokeUserSessions(ctx, tx, userID, exceptSID, reason, now)
	})
}

// revokeUserSessions is the shared step of every user change that ends
// sessions; it runs in the caller's transaction.
func revokeUserSessions(ctx context.Context, tx *sqlx.Tx, userID, exceptSID, reason string, now time.Time) error {
	_, err := tx.ExecContext(ctx, queries.RevokeUserSessions, sqlstore.ToDB(now), reason, userID, exceptSID)
	return wrapIf("revoke user sessions", err)
}

// RevokedSince lists the sessions revoked early whose last access token is
// still valid after since (AccessUntil > since), ordered by id (bytewise, as
// in SQLite) so that the same set always serialises the same way (the feed's
// ETag), whichever instance or backend answers.
func (s *Store) RevokedSince(ctx context.Context, since time.Time) ([]store.Revoked, error) {
	var rows []sqlstore.RevokedRow
	err := s.read(ctx, func() error {
		rows = nil
		return s.db.SelectContext(ctx, &rows, queries.RevokedSince, sqlstore.ToDB(since))
	})
	if err != nil {
		return nil, wrap("revoked since", err)
	}
	return sqlstore.Convert(rows, sqlstore.RevokedRow.Revoked), nil
}

// Sweep deletes at most limit sessions that ended (were revoked or reached
// their absolute expiry) before `before`, with their refresh tokens (ON DELETE
// CASCADE), in one bounded statement. A session is also kept while any of its
// access tokens is valid (access_until >= before), so a caller that passes a
// `before` no later than the revoked feed's window never drops a session the
// feed still has to publish. Rows another transaction holds (a rotation, an
// other instance's sweep) are skipped rather than waited for. Sessions that
// only went idle stay until their absolute expiry: the store does not know the
// idle TTL here.
func (s *Store) Sweep(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions
		WHERE access_until < $1 AND (expires_at < $1 OR revoked_at < $1)
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, sqlstore.ToDB(before), limit)
	if err != nil {
		return 0, wrap("sweep", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("sweep", err)
	}
	return int(n), nil
}
