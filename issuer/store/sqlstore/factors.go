package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// This file holds the store.FactorStore methods: TOTP, recovery codes and
// single-use challenges.

// TOTP returns the user's TOTP factor.
func (s *Store) TOTP(ctx context.Context, userID string) (store.TOTP, error) {
	var r TOTPRow
	if err := s.get(ctx, "totp", fmt.Sprintf("%q", userID), &r, s.q.TOTP, userID); err != nil {
		return store.TOTP{}, err
	}
	return r.TOTP(userID), nil
}

// EnableTOTP stores t and the user's new recovery codes in one transaction.
func (s *Store) EnableTOTP(ctx context.Context, t store.TOTP, recoveryHashes []string) error {
	return s.inTx(ctx, "enable totp", func(tx *sqlx.Tx) error {
		if err := s.liveUser(ctx, tx, "enable totp", t.UserID); err != nil {
			return err
		}
		if err := s.insert(ctx, tx, "enable totp", fmt.Sprintf("%q", t.UserID), s.q.InsertTOTP,
			t.UserID, t.Secret, ToDB(t.CreatedAt), t.LastStep); err != nil {
			return err
		}
		return s.replaceRecoveryCodes(ctx, tx, t.UserID, recoveryHashes)
	})
}

// DisableTOTP removes the user's TOTP factor.
func (s *Store) DisableTOTP(ctx context.Context, userID string) error {
	return s.execOne(ctx, s.db, "disable totp", fmt.Sprintf("%q", userID), s.q.DeleteTOTP, userID)
}

// UseTOTPStep advances the user's last used step, only forwards: one
// conditional UPDATE, so of two concurrent uses of one code exactly one wins.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	n, err := s.exec(ctx, s.db, "use totp step", s.q.UseTOTPStep, step, userID, step)
	if err != nil || n == 1 {
		return err
	}
	if _, err := s.TOTP(ctx, userID); err != nil {
		return err
	}
	return s.d.errorf("use totp step %d of %q: %w", step, userID, store.ErrConflict)
}

// ReplaceRecoveryCodes makes hashes the user's only recovery codes.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	return s.inTx(ctx, "replace recovery codes", func(tx *sqlx.Tx) error {
		return s.replaceRecoveryCodes(ctx, tx, userID, hashes)
	})
}

func (s *Store) replaceRecoveryCodes(ctx context.Context, tx *sqlx.Tx, userID string, hashes []string) error {
	const op = "replace recovery codes"
	if _, err := s.exec(ctx, tx, op, s.q.DeleteRecoveryCodes, userID); err != nil {
		return err
	}
	for _, h := range hashes {
		if err := s.insert(ctx, tx, op, fmt.Sprintf("of user %q", userID), s.q.InsertRecoveryCode, userID, h); err != nil {
			return err
		}
	}
	return nil
}

// UseRecoveryCode marks an unused code used.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string, now time.Time) error {
	return s.execOne(ctx, s.db, "use recovery code", fmt.Sprintf("of %q", userID), s.q.UseRecoveryCode, ToDB(now), userID, hash)
}

// RecoveryCodesLeft counts the user's unused codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.get(ctx, "recovery codes left", "", &n, s.q.RecoveryCodesLeft, userID)
	return n, err
}

// PutChallenge stores c, deleting some expired challenges first. Where rows
// are locked, instances sweeping at once split the work instead of waiting.
func (s *Store) PutChallenge(ctx context.Context, c store.Challenge) error {
	if c.ID == "" || c.Kind == "" {
		return s.d.errorf("put challenge: empty id or kind")
	}
	return s.inTx(ctx, "put challenge", func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, "put challenge: sweep", s.q.SweepChallenges, ToDB(c.CreatedAt), ChallengeSweep); err != nil {
			return err
		}
		return s.insert(ctx, tx, "put challenge", "", s.q.InsertChallenge,
			c.ID, c.Kind, c.UserID, c.Data, ToDB(c.CreatedAt), ToDB(c.ExpiresAt))
	})
}

// GetChallenge returns an unexpired challenge without using it.
func (s *Store) GetChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r ChallengeRow
	if err := s.get(ctx, "challenge", "", &r, s.q.GetChallenge, id, ToDB(now)); err != nil {
		return store.Challenge{}, err
	}
	return r.Challenge(), nil
}

// TakeChallenge deletes and returns an unexpired challenge: one DELETE …
// RETURNING, so of concurrent takes exactly one gets the row. It is a write,
// so it is never run again by itself.
func (s *Store) TakeChallenge(ctx context.Context, id string, now time.Time) (store.Challenge, error) {
	var r ChallengeRow
	err := s.noRow(s.db.GetContext(ctx, &r, s.q.TakeChallenge, id, ToDB(now)), "take challenge", "")
	if err != nil {
		return store.Challenge{}, err
	}
	return r.Challenge(), nil
}
