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
)

// sessionRow is a sessions row as stored, including the rotation state that
// store.Session does not expose; times are Unix microseconds.
type sessionRow struct {
	ID           string `db:"id"`
	UserID       string `db:"user_id"`
	CreatedAt    int64  `db:"created_at"`
	AuthTime     int64  `db:"auth_time"`
	ExpiresAt    int64  `db:"expires_at"`
	LastUsedAt   int64  `db:"last_used_at"`
	AccessUntil  int64  `db:"access_until"`
	RevokedAt    *int64 `db:"revoked_at"`
	RevokeReason string `db:"revoke_reason"`
	UserAgent    string `db:"user_agent"`
	IP           string `db:"ip"`
	CurrentHash  string `db:"current_hash"`
	PrevHash     string `db:"prev_hash"`
	RotatedAt    *int64 `db:"rotated_at"`
}

const sessionColumns = `id, user_id, created_at, auth_time, expires_at, last_used_at, access_until,
	revoked_at, revoke_reason, user_agent, ip, current_hash, prev_hash, rotated_at`

func (r sessionRow) session() store.Session {
	return store.Session{
		ID:           r.ID,
		UserID:       r.UserID,
		CreatedAt:    fromDB(r.CreatedAt),
		AuthTime:     fromDB(r.AuthTime),
		ExpiresAt:    fromDB(r.ExpiresAt),
		LastUsedAt:   fromDB(r.LastUsedAt),
		AccessUntil:  fromDB(r.AccessUntil),
		RevokedAt:    fromNullDB(r.RevokedAt),
		RevokeReason: r.RevokeReason,
		UserAgent:    r.UserAgent,
		IP:           r.IP,
	}
}

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
		err := tx.GetContext(ctx, &disabled, `SELECT disabled FROM users WHERE id = $1 AND deleted_at IS NULL FOR SHARE`, sess.UserID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("postgres: create session: user %q: %w", sess.UserID, store.ErrNotFound)
		}
		if err != nil {
			return wrap("create session: user", err)
		}
		if disabled {
			return fmt.Errorf("postgres: create session: user %q is disabled: %w", sess.UserID, store.ErrSessionEnded)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '', NULL)`,
			sess.ID, sess.UserID, toDB(sess.CreatedAt), toDB(sess.AuthTime), toDB(sess.ExpiresAt),
			toDB(sess.LastUsedAt), toDB(sess.AccessUntil), toNullDB(sess.RevokedAt), sess.RevokeReason,
			sess.UserAgent, sess.IP, refreshHash)
		if isUnique(err) {
			return fmt.Errorf("postgres: create session %q: %w", sess.ID, store.ErrConflict)
		}
		if err != nil {
			return wrap("create session", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)`,
			refreshHash, sess.ID, toDB(sess.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("postgres: create session %q: refresh hash: %w", sess.ID, store.ErrConflict)
		}
		return wrapIf("create session: refresh token", err)
	})
}

// Session returns a session by id, whatever its state.
func (s *Store) Session(ctx context.Context, sid string) (store.Session, error) {
	return s.session(ctx, "session", `id = $1`, sid)
}

// SessionByRefresh returns the session that issued the token with this hash,
// current or superseded, whatever its state.
func (s *Store) SessionByRefresh(ctx context.Context, hash string) (store.Session, error) {
	return s.session(ctx, "session by refresh token", `id = (SELECT session_id FROM refresh_tokens WHERE hash = $1)`, hash)
}

func (s *Store) session(ctx context.Context, op, where, arg string) (store.Session, error) {
	var r sessionRow
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &r, `SELECT `+sessionColumns+` FROM sessions WHERE `+where, arg)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, wrap(op, err)
	}
	return r.session(), nil
}

// ListSessions returns the user's sessions still active at now, most recently
// used first. The filter is store.Session.Active written as SQL.
func (s *Store) ListSessions(ctx context.Context, userID string, now time.Time, idle time.Duration) ([]store.Session, error) {
	// With no idle limit, any last use counts: compare against the minimum.
	usedAfter := int64(math.MinInt64)
	if idle > 0 {
		usedAfter = toDB(now.Add(-idle))
	}
	var rows []sessionRow
	err := s.read(ctx, func() error {
		rows = nil
		return s.db.SelectContext(ctx, &rows, `SELECT `+sessionColumns+` FROM sessions
			WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_used_at > $3
			ORDER BY last_used_at DESC, id`, userID, toDB(now), usedAfter)
	})
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	out := make([]store.Session, len(rows))
	for i, r := range rows {
		out[i] = r.session()
	}
	return out, nil
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
			toDB(now), reason, sid)
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
	_, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
		WHERE user_id = $3 AND id <> $4 AND revoked_at IS NULL`, toDB(now), reason, userID, exceptSID)
	return wrapIf("revoke user sessions", err)
}

// RevokedSince lists the sessions revoked early whose last access token is
// still valid after since (AccessUntil > since), ordered by id (bytewise, as
// in SQLite) so that the same set always serialises the same way (the feed's
// ETag), whichever instance or backend answers.
func (s *Store) RevokedSince(ctx context.Context, since time.Time) ([]store.Revoked, error) {
	var rows []struct {
		ID          string `db:"id"`
		AccessUntil int64  `db:"access_until"`
	}
	err := s.read(ctx, func() error {
		rows = nil
		return s.db.SelectContext(ctx, &rows, `SELECT id, access_until FROM sessions
			WHERE revoked_at IS NOT NULL AND access_until > $1 ORDER BY id`, toDB(since))
	})
	if err != nil {
		return nil, wrap("revoked since", err)
	}
	out := make([]store.Revoked, len(rows))
	for i, r := range rows {
		out[i] = store.Revoked{SID: r.ID, Until: fromDB(r.AccessUntil)}
	}
	return out, nil
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
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, toDB(before), limit)
	if err != nil {
		return 0, wrap("sweep", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("sweep", err)
	}
	return int(n), nil
}

// state is the row's refresh state for store.RotateRequest.Decide.
func (r sessionRow) state(sess store.Session, u store.User) store.RotationState {
	st := store.RotationState{Session: sess, User: u, CurrentHash: r.CurrentHash, PrevHash: r.PrevHash}
	if r.RotatedAt != nil {
		t := fromDB(*r.RotatedAt)
		st.RotatedAt = &t
	}
	return st
}
