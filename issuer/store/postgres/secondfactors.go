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

// This file holds the store.FactorStore methods: TOTP, recovery codes and
// single-use challenges.

// TOTP returns the user's TOTP factor.
func (s *Store) TOTP(ctx context.Context, userID string) (store.TOTP, error) {
	var r sqlstore.TOTPRow
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &r, queries.TOTP, userID)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.TOTP{}, fmt.Errorf("postgres: totp %q: %w", userID, store.ErrNotFound)
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
		if isUnique(err) {
			return fmt.Errorf("postgres: enable totp %q: %w", t.UserID, store.ErrConflict)
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

// UseTOTPStep advances the user's last used step, only forwards: one
// conditional UPDATE, so of two concurrent uses of one code exactly one wins.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE totp SET last_step = $1 WHERE user_id = $2 AND last_step < $1`, step, userID)
	if err != nil {
		return wrap("use totp step", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("use totp step", err)
	} else if n == 1 {
		return nil
	}
	if _, err := s.TOTP(ctx, userID); err != nil {
		return err
	}
	return fmt.Errorf("postgres: use totp step %d of %q: %w", step, userID, store.ErrConflict)
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
		if isForeignKey(err) {
			return fmt.Errorf("postgres: replace recovery codes: user %q: %w", userID, store.ErrNotFound)
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
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &n, queries.RecoveryCodesLeft, userID)
	})
	if err != nil {
		return 0, wrap("recovery codes left", err)
	}
	return n, nil
}

// PutChallenge stores c, deleting some expired challenges first.
func (s *Store) PutChallenge(ctx context.Context, c store.Challenge) error {
	if c.ID == "" || c.Kind == "" {
		return errors.New("postgres: put challenge: empty id or kind")
	}
	return s.inTx(ctx, "put challenge", func(tx *sqlx.Tx) error {
		// SKIP LOCKED: instances sweeping at once split the work instead of waiting.
		if _, err := tx.ExecContext(ctx, `DELETE FROM challenges WHERE id IN
			(SELECT id FROM challenges WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			sqlstore.ToDB(c.CreatedAt), sqlstore.ChallengeSweep); err != nil {
			return wrap("put challenge: sweep", err)
		}
		_, err := tx.ExecContext(ctx, queries.InsertChallenge, c.ID, c.Kind, c.UserID, c.Data, sqlstore.ToDB(c.CreatedAt), sqlstore.ToDB(c.ExpiresAt))
		if isUnique(err) {
			return fmt.Errorf("postgres: put challenge: %w", store.ErrConflict)
		}
		return wrapIf("put challenge", err)
	})
}

// GetChallenge returns an unexpired challenge without using it.
func (s *Store) GetChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r sqlstore.ChallengeRow
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &r, queries.GetChallenge, id, sqlstore.ToDB(now))
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("postgres: challenge: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Challenge{}, wrap("challenge", err)
	}
	return r.Challenge(), nil
}

// TakeChallenge deletes and returns an unexpired challenge: one DELETE …
// RETURNING, so of concurrent takes exactly one gets the row.
func (s *Store) TakeChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r sqlstore.ChallengeRow
	err := s.db.GetContext(ctx, &r, queries.TakeChallenge, id, sqlstore.ToDB(now))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("postgres: take challenge: %w", store.ErrNotFound)
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
		return fmt.Errorf("postgres: %s %q: %w", op, key, store.ErrNotFound)
	}
	return nil
}
