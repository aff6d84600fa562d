package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// CreateSession inserts sess with refreshHash as its current token, both in one
// transaction. The user is checked in the same transaction, so a sign-in that
// races with disabling or deleting the account cannot leave a live session
// behind: a missing or deleted user is store.ErrNotFound, a disabled one
// store.ErrSessionEnded. A reused session id or token hash is store.ErrConflict.
func (s *Store) CreateSession(ctx context.Context, sess store.Session, refreshHash string) error {
	if sess.ID == "" || refreshHash == "" {
		return errors.New("sqlite: create session: empty id or refresh hash")
	}
	return s.inTx(ctx, "create session", func(tx *sqlx.Tx) error {
		var disabled bool
		err := tx.GetContext(ctx, &disabled, queries.UserDisabled, sess.UserID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: create session: user %q: %w", sess.UserID, store.ErrNotFound)
		}
		if err != nil {
			return wrap("create session: user", err)
		}
		if disabled {
			return fmt.Errorf("sqlite: create session: user %q is disabled: %w", sess.UserID, store.ErrSessionEnded)
		}
		_, err = tx.ExecContext(ctx, queries.InsertSession,
			sess.ID, sess.UserID, sqlstore.ToDB(sess.CreatedAt), sqlstore.ToDB(sess.AuthTime), sqlstore.ToDB(sess.ExpiresAt),
			sqlstore.ToDB(sess.LastUsedAt), sqlstore.ToDB(sess.AccessUntil), sqlstore.ToNullDB(sess.RevokedAt), sess.RevokeReason,
			sess.UserAgent, sess.IP, refreshHash)
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique) {
			return fmt.Errorf("sqlite: create session %q: %w", sess.ID, store.ErrConflict)
		}
		if err != nil {
			return wrap("create session", err)
		}
		_, err = tx.ExecContext(ctx, queries.InsertRefreshToken,
			refreshHash, sess.ID, sqlstore.ToDB(sess.CreatedAt))
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique) {
			return fmt.Errorf("sqlite: create session %q: refresh hash: %w", sess.ID, store.ErrConflict)
		}
		if err != nil {
			return wrap("create session: refresh token", err)
		}
		return nil
	})
}

// Session returns a session by id, whatever its state.
func (s *Store) Session(ctx context.Context, sid string) (store.Session, error) {
	var r sqlstore.SessionRow
	err := s.db.GetContext(ctx, &r, queries.SessionByID, sid)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("sqlite: session %q: %w", sid, store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, wrap("session", err)
	}
	return r.Session(), nil
}

// SessionByRefresh returns the session that issued the token with this hash.
func (s *Store) SessionByRefresh(ctx context.Context, hash string) (store.Session, error) {
	var r sqlstore.SessionRow
	err := s.db.GetContext(ctx, &r, queries.SessionByRefresh, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("sqlite: session by refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, wrap("session by refresh token", err)
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
	err := s.db.SelectContext(ctx, &rows, queries.ActiveSessions, userID, sqlstore.ToDB(now), usedAfter)
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	return sqlstore.Convert(rows, sqlstore.SessionRow.Session), nil
}

// RevokeSession ends one session. A session already revoked keeps its first
// time and reason, which is what the audit trail and the feed should show.
func (s *Store) RevokeSession(ctx context.Context, sid, reason string, now time.Time) error {
	return s.inTx(ctx, "revoke session", func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, queries.RevokeSession, sqlstore.ToDB(now), reason, sid)
		if err != nil {
			return wrap("revoke session", err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return wrapIf("revoke session", err)
		}
		var one int
		err = tx.GetContext(ctx, &one, `SELECT 1 FROM sessions WHERE id = ?`, sid)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: revoke session %q: %w", sid, store.ErrNotFound)
		}
		return wrapIf("revoke session", err)
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
// still valid after since (AccessUntil > since), ordered by id so that the
// same set always serialises the same way (the feed's ETag).
func (s *Store) RevokedSince(ctx context.Context, since time.Time) ([]store.Revoked, error) {
	var rows []sqlstore.RevokedRow
	err := s.db.SelectContext(ctx, &rows, queries.RevokedSince, sqlstore.ToDB(since))
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
// feed still has to publish. Sessions that only went idle stay until their
// absolute expiry: the store does not know the idle TTL here.
func (s *Store) Sweep(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	b := sqlstore.ToDB(before)
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions
		WHERE access_until < ?1 AND (expires_at < ?1 OR revoked_at < ?1)
		LIMIT ?2)`, b, limit)
	if err != nil {
		return 0, wrap("sweep", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("sweep", err)
	}
	return int(n), nil
}

// wrapIf is wrap for an error that may be nil.
func wrapIf(op string, err error) error {
	if err == nil {
		return nil
	}
	return wrap(op, err)
}
