package sqlstore

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// This file holds the store.PasskeyStore methods.

// AddPasskey stores a passkey of a live user.
func (s *Store) AddPasskey(ctx context.Context, p store.Passkey) error {
	if p.ID == "" || p.Credential == "" {
		return s.d.errorf("add passkey: empty id or credential")
	}
	return s.inTx(ctx, "add passkey", func(tx *sqlx.Tx) error {
		if err := s.liveUser(ctx, tx, "add passkey", p.UserID); err != nil {
			return err
		}
		return s.insert(ctx, tx, "add passkey", "", s.q.InsertPasskey,
			p.ID, p.UserID, p.Name, p.Credential, int64(p.SignCount), ToDB(p.CreatedAt), ToNullDB(p.LastUsedAt))
	})
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	rows, err := list[PasskeyRow](ctx, s, "passkeys", s.q.Passkeys, userID)
	return Convert(rows, PasskeyRow.Passkey), err
}

// PasskeyByID returns the passkey with this credential ID.
func (s *Store) PasskeyByID(ctx context.Context, id string) (store.Passkey, error) {
	var r PasskeyRow
	if err := s.get(ctx, "passkey", "", &r, s.q.PasskeyByID, id); err != nil {
		return store.Passkey{}, err
	}
	return r.Passkey(), nil
}

// UsePasskey advances the signature counter, only forwards: one conditional
// UPDATE, so of concurrent uses with one counter value one wins.
func (s *Store) UsePasskey(ctx context.Context, id string, signCount uint32, now time.Time) error {
	n, err := s.exec(ctx, s.db, "use passkey", s.q.UsePasskey,
		int64(signCount), ToDB(now), id, int64(signCount), signCount == 0)
	if err != nil || n == 1 {
		return err
	}
	if _, err := s.PasskeyByID(ctx, id); err != nil {
		return err
	}
	return s.d.errorf("use passkey: signature counter %d does not move forward: %w", signCount, store.ErrConflict)
}

// RemovePasskey deletes one of the user's passkeys.
func (s *Store) RemovePasskey(ctx context.Context, userID, id string) error {
	return s.execOne(ctx, s.db, "remove passkey", "", s.q.RemovePasskey, userID, id)
}
