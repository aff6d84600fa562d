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

// TOTP returns the user's TOTP factor.
func (s *Store) TOTP(ctx context.Context, userID string) (store.TOTP, error) {
	var r sqlstore.TOTPRow
	err := s.db.GetContext(ctx, &r, queries.TOTP, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TOTP{}, fmt.Errorf("sqlite: totp %q: %w", userID, store.ErrNotFound)
	}
	if err != nil {
		return store.TOTP{}, wrap("totp", err)
	}
	return r.TOTP(userID), nil
}

// EnableTOTP stores t and the user's new recovery codes in one transaction.
func (s *Store) EnableTOTP(ctx context.Context, t store.TOTP, recoveryHashes []string) error {
	return s.inTx(ctx, "enable totp", func(tx *sqlx.Tx) error {
		if err := liveUser(ctx, tx, "enable totp", t.UserID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, queries.InsertTOTP,
			t.UserID, t.Secret, sqlstore.ToDB(t.CreatedAt), t.LastStep)
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
	res, err := s.db.ExecContext(ctx, queries.DeleteTOTP, userID)
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
	if _, err := tx.ExecContext(ctx, queries.DeleteRecoveryCodes, userID); err != nil {
		return wrap("replace recovery codes", err)
	}
	for _, h := range hashes {
		_, err := tx.ExecContext(ctx, queries.InsertRecoveryCode, userID, h)
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
	res, err := s.db.ExecContext(ctx, queries.UseRecoveryCode, sqlstore.ToDB(now), userID, hash)
	return oneRow(res, err, "use recovery code", userID)
}

// RecoveryCodesLeft counts the user's unused codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, queries.RecoveryCodesLeft, userID)
	if err != nil {
		return 0, wrap("recovery codes left", err)
	}
	return n, nil
}

// PutChallenge stores c, deleting some expired challenges first.
func (s *Store) PutChallenge(ctx context.Context, c store.Challenge) error {
	if c.ID == "" || c.Kind == "" {
		return errors.New("sqlite: put challenge: empty id or kind")
	}
	return s.inTx(ctx, "put challenge", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM challenges WHERE id IN
			(SELECT id FROM challenges WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`,
			sqlstore.ToDB(c.CreatedAt), sqlstore.ChallengeSweep); err != nil {
			return wrap("put challenge: sweep", err)
		}
		_, err := tx.ExecContext(ctx, queries.InsertChallenge, c.ID, c.Kind, c.UserID, c.Data, sqlstore.ToDB(c.CreatedAt), sqlstore.ToDB(c.ExpiresAt))
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique) {
			return fmt.Errorf("sqlite: put challenge: %w", store.ErrConflict)
		}
		if err != nil {
			return wrap("put challenge", err)
		}
		return nil
	})
}

// GetChallenge returns an unexpired challenge without using it.
func (s *Store) GetChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r sqlstore.ChallengeRow
	err := s.db.GetContext(ctx, &r, queries.GetChallenge, id, sqlstore.ToDB(now))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("sqlite: challenge: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Challenge{}, wrap("challenge", err)
	}
	return r.Challenge(), nil
}

// TakeChallenge deletes and returns an unexpired challenge.
func (s *Store) TakeChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r sqlstore.ChallengeRow
	err := s.db.GetContext(ctx, &r, queries.TakeChallenge, id, sqlstore.ToDB(now))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("sqlite: take challenge: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Challenge{}, wrap("take challenge", err)
	}
	return r.Challenge(), nil
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
