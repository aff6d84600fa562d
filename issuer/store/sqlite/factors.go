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
)

// TOTP returns the user's TOTP factor.
func (s *Store) TOTP(ctx context.Context, userID string) (store.TOTP, error) {
	var r struct {
		Secret    string `db:"secret"`
		CreatedAt int64  `db:"created_at"`
		LastStep  int64  `db:"last_step"`
	}
	err := s.db.GetContext(ctx, &r, `SELECT secret, created_at, last_step FROM totp WHERE user_id = ?`, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TOTP{}, fmt.Errorf("sqlite: totp %q: %w", userID, store.ErrNotFound)
	}
	if err != nil {
		return store.TOTP{}, wrap("totp", err)
	}
	return store.TOTP{UserID: userID, Secret: r.Secret, CreatedAt: fromDB(r.CreatedAt), LastStep: r.LastStep}, nil
}

// EnableTOTP stores t and the user's new recovery codes in one transaction.
func (s *Store) EnableTOTP(ctx context.Context, t store.TOTP, recoveryHashes []string) error {
	return s.inTx(ctx, "enable totp", func(tx *sqlx.Tx) error {
		if err := liveUser(ctx, tx, "enable totp", t.UserID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO totp (user_id, secret, created_at, last_step) VALUES (?, ?, ?, ?)`,
			t.UserID, t.Secret, toDB(t.CreatedAt), t.LastStep)
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique) {
			return fmt.Errorf("sqlite: enable totp %q: %w", t.UserID, store.ErrConflict)
		}
		if err != nil {
			return wrap("enable totp", err)
		}
		return replaceRecoveryCodes(ctx, tx, t.UserID, recoveryHashes)
	})
}

// DisableTOTP removes the user's TOTP factor.
func (s *Store) DisableTOTP(ctx context.Context, userID string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM totp WHERE user_id = ?`, userID)
	return oneRow(res, err, "disable totp", userID)
}

// UseTOTPStep advances the user's last used step, only forwards.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	return s.inTx(ctx, "use totp step", func(tx *sqlx.Tx) error {
		var last int64
		err := tx.GetContext(ctx, &last, `SELECT last_step FROM totp WHERE user_id = ?`, userID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: use totp step %q: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return wrap("use totp step", err)
		}
		if step <= last {
			return fmt.Errorf("sqlite: use totp step %d of %q (last %d): %w", step, userID, last, store.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE totp SET last_step = ? WHERE user_id = ?`, step, userID); err != nil {
			return wrap("use totp step", err)
		}
		return nil
	})
}

// ReplaceRecoveryCodes makes hashes the user's only recovery codes.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	return s.inTx(ctx, "replace recovery codes", func(tx *sqlx.Tx) error {
		return replaceRecoveryCodes(ctx, tx, userID, hashes)
	})
}

func replaceRecoveryCodes(ctx context.Context, tx *sqlx.Tx, userID string, hashes []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return wrap("replace recovery codes", err)
	}
	for _, h := range hashes {
		_, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`, userID, h)
		if isConstraint(err, sqlite3.ErrConstraintForeignKey) {
			return fmt.Errorf("sqlite: replace recovery codes: user %q: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return wrap("replace recovery codes", err)
		}
	}
	return nil
}

// UseRecoveryCode marks an unused code used.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ?
		WHERE user_id = ? AND hash = ? AND used_at IS NULL`, toDB(now), userID, hash)
	return oneRow(res, err, "use recovery code", userID)
}

// RecoveryCodesLeft counts the user's unused codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID)
	if err != nil {
		return 0, wrap("recovery codes left", err)
	}
	return n, nil
}

// challengeSweep bounds how many expired challenges one PutChallenge deletes.
const challengeSweep = 100

// PutChallenge stores c, deleting some expired challenges first.
func (s *Store) PutChallenge(ctx context.Context, c store.Challenge) error {
	if c.ID == "" || c.Kind == "" {
		return errors.New("sqlite: put challenge: empty id or kind")
	}
	return s.inTx(ctx, "put challenge", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM challenges WHERE id IN
			(SELECT id FROM challenges WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`,
			toDB(c.CreatedAt), challengeSweep); err != nil {
			return wrap("put challenge: sweep", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO challenges (id, kind, user_id, data, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, c.ID, c.Kind, c.UserID, c.Data, toDB(c.CreatedAt), toDB(c.ExpiresAt))
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique) {
			return fmt.Errorf("sqlite: put challenge: %w", store.ErrConflict)
		}
		if err != nil {
			return wrap("put challenge", err)
		}
		return nil
	})
}

type challengeRow struct {
	ID        string `db:"id"`
	Kind      string `db:"kind"`
	UserID    string `db:"user_id"`
	Data      string `db:"data"`
	CreatedAt int64  `db:"created_at"`
	ExpiresAt int64  `db:"expires_at"`
}

func (r challengeRow) challenge() store.Challenge {
	return store.Challenge{ID: r.ID, Kind: r.Kind, UserID: r.UserID, Data: r.Data,
		CreatedAt: fromDB(r.CreatedAt), ExpiresAt: fromDB(r.ExpiresAt)}
}

const challengeColumns = `id, kind, user_id, data, created_at, expires_at`

// GetChallenge returns an unexpired challenge without using it.
func (s *Store) GetChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r challengeRow
	err := s.db.GetContext(ctx, &r, `SELECT `+challengeColumns+` FROM challenges WHERE id = ? AND expires_at > ?`, id, toDB(now))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("sqlite: challenge: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Challenge{}, wrap("challenge", err)
	}
	return r.challenge(), nil
}

// TakeChallenge deletes and returns an unexpired challenge.
func (s *Store) TakeChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r challengeRow
	err := s.db.GetContext(ctx, &r, `DELETE FROM challenges WHERE id = ? AND expires_at > ? RETURNING `+challengeColumns, id, toDB(now))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("sqlite: take challenge: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Challenge{}, wrap("take challenge", err)
	}
	return r.challenge(), nil
}

// oneRow turns the result of a write that must change exactly one row into
// nil or store.ErrNotFound.
func oneRow(res sql.Result, err error, op, key string) error {
	if err != nil {
		return wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s %q: %w", op, key, store.ErrNotFound)
	}
	return nil
}
