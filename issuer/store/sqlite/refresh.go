package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// RotateRefresh rotates or converges the refresh token r.PresentedHash in one
// BEGIN IMMEDIATE transaction, so concurrent presentations of one token (two
// tabs, a retry, another instance) are serialised and exactly one rotates.
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
//     durably, then store.ErrReuse is returned.
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
		row, u, err := tokenSession(ctx, tx, r.PresentedHash)
		if err != nil {
			return err
		}
		res = store.RotateResult{Session: row.Session(), User: u.User()}
		switch r.Decide(row.State(res.Session, res.User), now) {
		case store.StepEnded:
			return fmt.Errorf("sqlite: rotate refresh: session %q: %w", row.ID, store.ErrSessionEnded)
		case store.StepRotate:
			if err := rotate(ctx, tx, row, r.PresentedHash, r.SuccessorHash, now); err != nil {
				return err
			}
			res.Outcome = store.Rotated
		case store.StepConverge:
			res.Outcome = store.Converged
		case store.StepMismatch:
			return fmt.Errorf("sqlite: rotate refresh: session %q: derived successor differs from the stored one (secret mismatch?)", row.ID)
		case store.StepReuse:
			if _, err := tx.ExecContext(ctx, queries.RevokeSession, sqlstore.ToDB(now), store.ReasonReuse, row.ID); err != nil {
				return wrap("rotate refresh: revoke on reuse", err)
			}
			res.Session.RevokedAt = &now
			res.Session.RevokeReason = store.ReasonReuse
			reused = true
			return nil // commit the revocation before reporting the reuse
		}

		// Both outcomes count as a use and mint an access token.
		if _, err := tx.ExecContext(ctx, `UPDATE sessions
			SET last_used_at = MAX(last_used_at, ?1), access_until = MAX(access_until, ?2)
			WHERE id = ?3`, sqlstore.ToDB(now), sqlstore.ToDB(r.AccessExpiry), row.ID); err != nil {
			return wrap("rotate refresh: record use", err)
		}
		// Clocks of several instances may disagree; never move either back.
		res.Session.LastUsedAt = sqlstore.Latest(res.Session.LastUsedAt, now)
		res.Session.AccessUntil = sqlstore.Latest(res.Session.AccessUntil, sqlstore.Trunc(r.AccessExpiry))
		return nil
	})
	if err != nil {
		return res, err
	}
	if reused {
		return res, fmt.Errorf("sqlite: rotate refresh: session %q: %w", res.Session.ID, store.ErrReuse)
	}
	return res, nil
}

// tokenSession loads the session that issued the token, and its user, even
// when the user is deleted: the caller decides what an ended session means.
func tokenSession(ctx context.Context, tx *sqlx.Tx, hash string) (sqlstore.SessionRow, sqlstore.UserRow, error) {
	var row sqlstore.SessionRow
	err := tx.GetContext(ctx, &row, queries.SessionByRefresh, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return row, sqlstore.UserRow{}, fmt.Errorf("sqlite: rotate refresh: unknown token: %w", store.ErrNotFound)
	}
	if err != nil {
		return row, sqlstore.UserRow{}, wrap("rotate refresh: load session", err)
	}
	var u sqlstore.UserRow
	if err := tx.GetContext(ctx, &u, `SELECT `+sqlstore.UserColumns+` FROM users WHERE id = ?`, row.UserID); err != nil {
		// The foreign key makes a missing user impossible short of corruption.
		return row, u, wrap("rotate refresh: load user", err)
	}
	return row, u, nil
}

// rotate records the successor as the session's current token and keeps the
// presented one as its predecessor for the grace check. Every token stays in
// refresh_tokens so that presenting it later is recognised as reuse.
func rotate(ctx context.Context, tx *sqlx.Tx, row sqlstore.SessionRow, presented, successor string, now time.Time) error {
	t := sqlstore.ToDB(now)
	_, err := tx.ExecContext(ctx, queries.InsertRefreshToken,
		successor, row.ID, t)
	if isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique) {
		return fmt.Errorf("sqlite: rotate refresh: session %q: successor token already issued", row.ID)
	}
	if err != nil {
		return wrap("rotate refresh: insert successor", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET superseded_at = ? WHERE hash = ?`, t, presented); err != nil {
		return wrap("rotate refresh: supersede", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET current_hash = ?, prev_hash = ?, rotated_at = ? WHERE id = ?`,
		successor, presented, t, row.ID); err != nil {
		return wrap("rotate refresh: advance", err)
	}
	return nil
}
