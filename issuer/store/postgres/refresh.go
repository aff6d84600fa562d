package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// RotateRefresh rotates or converges the refresh token r.PresentedHash in one
// transaction that first locks the session's row (SELECT … FOR UPDATE), so
// concurrent presentations of one token, from any number of goroutines and
// instances, are serialised on that row: the first rotates, and each later
// one reads the row as the first left it and converges. Sessions other than
// the presented token's are never locked, so rotations of different sessions
// run in parallel.
//
// In order:
//   - unknown token: store.ErrNotFound;
//   - session revoked, past its expiry or idle, or its user disabled or
//     deleted: store.ErrSessionEnded, nothing written;
//   - the current token: the successor becomes current (store.Rotated);
//   - the immediate predecessor within r.Grace of its rotation, with the
//     successor the caller derived equal to the current token: nothing is
//     rotated, only the last use is recorded (store.Converged); a different
//     successor means the caller's secret differs and is an error, not reuse;
//   - any other token of the session: the session is revoked and committed
//     (durably: synchronous_commit is on), then store.ErrReuse is returned.
//
// With store.ErrReuse and store.ErrSessionEnded the result still carries the
// session and its user, so the caller can record who was affected.
func (s *Store) RotateRefresh(ctx context.Context, r store.RotateRequest) (store.RotateResult, error) {
	if err := r.Check(); err != nil {
		return store.RotateResult{}, err
	}
	now := sqlstore.Trunc(r.Now)
	var (
		res    store.RotateResult
		reused bool
	)
	err := s.inTx(ctx, "rotate refresh", func(tx *sqlx.Tx) error {
		res, reused = store.RotateResult{}, false // a retried transaction starts afresh
		row, u, err := lockTokenSession(ctx, tx, r.PresentedHash)
		if err != nil {
			return err
		}
		res = store.RotateResult{Session: row.Session(), User: u.User()}
		switch r.Decide(row.State(res.Session, res.User), now) {
		case store.StepEnded:
			return fmt.Errorf("postgres: rotate refresh: session %q: %w", row.ID, store.ErrSessionEnded)
		case store.StepRotate:
			if err := rotate(ctx, tx, row.ID, r.PresentedHash, r.SuccessorHash, now, r.AccessExpiry); err != nil {
				return err
			}
			res.Outcome = store.Rotated
		case store.StepConverge:
			if _, err := tx.ExecContext(ctx, `UPDATE sessions
				SET last_used_at = GREATEST(last_used_at, $1), access_until = GREATEST(access_until, $2)
				WHERE id = $3`, sqlstore.ToDB(now), sqlstore.ToDB(r.AccessExpiry), row.ID); err != nil {
				return wrap("rotate refresh: record use", err)
			}
			res.Outcome = store.Converged
		case store.StepMismatch:
			return fmt.Errorf("postgres: rotate refresh: session %q: derived successor differs from the stored one (secret mismatch?)", row.ID)
		case store.StepReuse:
			if _, err := tx.ExecContext(ctx, queries.RevokeSession, sqlstore.ToDB(now), store.ReasonReuse, row.ID); err != nil {
				return wrap("rotate refresh: revoke on reuse", err)
			}
			res.Session.RevokedAt = &now
			res.Session.RevokeReason = store.ReasonReuse
			reused = true
			return nil // commit the revocation before reporting the reuse
		}
		// Both outcomes count as a use and mint an access token. Clocks of
		// several instances may disagree; never move either time back.
		res.Session.LastUsedAt = sqlstore.Latest(res.Session.LastUsedAt, now)
		res.Session.AccessUntil = sqlstore.Latest(res.Session.AccessUntil, sqlstore.Trunc(r.AccessExpiry))
		return nil
	})
	if err != nil {
		return res, err
	}
	if reused {
		return res, fmt.Errorf("postgres: rotate refresh: session %q: %w", res.Session.ID, store.ErrReuse)
	}
	return res, nil
}

// lockedRow is the presented token's session, locked, with its user.
type lockedRow struct {
	sqlstore.SessionRow
	Username      string        `db:"username"`
	PasswordHash  string        `db:"password_hash"`
	Disabled      bool          `db:"disabled"`
	UserCreatedAt int64         `db:"user_created_at"`
	UserDeletedAt sql.NullInt64 `db:"user_deleted_at"`
}

func (r lockedRow) user() sqlstore.UserRow {
	return sqlstore.UserRow{ID: r.UserID, Username: r.Username, PasswordHash: r.PasswordHash, Disabled: r.Disabled,
		CreatedAt: r.UserCreatedAt, DeletedAt: r.UserDeletedAt}
}

// lockTokenSession loads and locks the session that issued the token, and
// loads its user, even when the user is deleted: the caller decides what an
// ended session means. A waiter on the lock gets the row as the holder
// committed it (READ COMMITTED re-reads a locked row once it is released),
// so it sees the rotation it waited for. The user's row is read, not locked.
func lockTokenSession(ctx context.Context, tx *sqlx.Tx, hash string) (sqlstore.SessionRow, sqlstore.UserRow, error) {
	var row lockedRow
	err := tx.GetContext(ctx, &row, `SELECT s.id, s.user_id, s.created_at, s.auth_time, s.expires_at,
			s.last_used_at, s.access_until, s.revoked_at, s.revoke_reason, s.user_agent, s.ip,
			s.current_hash, s.prev_hash, s.rotated_at,
			u.username, u.password_hash, u.disabled, u.created_at AS user_created_at, u.deleted_at AS user_deleted_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = (SELECT session_id FROM refresh_tokens WHERE hash = $1)
		FOR UPDATE OF s`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.SessionRow{}, sqlstore.UserRow{}, fmt.Errorf("postgres: rotate refresh: unknown token: %w", store.ErrNotFound)
	}
	if err != nil {
		return sqlstore.SessionRow{}, sqlstore.UserRow{}, wrap("rotate refresh: load session", err)
	}
	return row.SessionRow, row.user(), nil
}

// rotate records the successor as the session's current token, keeps the
// presented one as its predecessor for the grace check and records the use,
// in one statement (one round trip). Every token stays in refresh_tokens so
// that presenting it later is recognised as reuse.
func rotate(ctx context.Context, tx *sqlx.Tx, sid, presented, successor string, now, accessExpiry time.Time) error {
	_, err := tx.ExecContext(ctx, `WITH
			successor AS (INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)),
			superseded AS (UPDATE refresh_tokens SET superseded_at = $3 WHERE hash = $4)
		UPDATE sessions SET current_hash = $1, prev_hash = $4, rotated_at = $3,
			last_used_at = GREATEST(last_used_at, $3), access_until = GREATEST(access_until, $5)
		WHERE id = $2`, successor, sid, sqlstore.ToDB(now), presented, sqlstore.ToDB(accessExpiry))
	if isUnique(err) {
		return fmt.Errorf("postgres: rotate refresh: session %q: successor token already issued", sid)
	}
	return wrapIf("rotate refresh: advance", err)
}
