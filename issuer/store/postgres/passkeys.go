package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// This file holds the store.PasskeyStore methods.

type passkeyRow struct {
	ID         string `db:"id"`
	UserID     string `db:"user_id"`
	Name       string `db:"name"`
	Credential string `db:"credential"`
	SignCount  int64  `db:"sign_count"`
	CreatedAt  int64  `db:"created_at"`
	LastUsedAt *int64 `db:"last_used_at"`
}

const passkeyColumns = `id, user_id, name, credential, sign_count, created_at, last_used_at`

func (r passkeyRow) passkey() store.Passkey {
	return store.Passkey{ID: r.ID, UserID: r.UserID, Name: r.Name, Credential: r.Credential,
		SignCount: uint32(r.SignCount), CreatedAt: fromDB(r.CreatedAt), LastUsedAt: fromNullDB(r.LastUsedAt)}
}

// AddPasskey stores a passkey of a live user.
func (s *Store) AddPasskey(ctx context.Context, p store.Passkey) error {
	if p.ID == "" || p.Credential == "" {
		return errors.New("postgres: add passkey: empty id or credential")
	}
	return s.inTx(ctx, "add passkey", func(tx *sqlx.Tx) error {
		if err := liveUser(ctx, tx, "add passkey", p.UserID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO passkeys (`+passkeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			p.ID, p.UserID, p.Name, p.Credential, int64(p.SignCount), toDB(p.CreatedAt), toNullDB(p.LastUsedAt))
		if isUnique(err) {
			return fmt.Errorf("postgres: add passkey: %w", store.ErrConflict)
		}
		return wrapIf("add passkey", err)
	})
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	var rows []passkeyRow
	err := s.read(ctx, func() error {
		rows = nil
		return s.db.SelectContext(ctx, &rows, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = $1 ORDER BY created_at, id`, userID)
	})
	if err != nil {
		return nil, wrap("passkeys", err)
	}
	out := make([]store.Passkey, len(rows))
	for i, r := range rows {
		out[i] = r.passkey()
	}
	return out, nil
}

// PasskeyByID returns the passkey with this credential ID.
func (s *Store) PasskeyByID(ctx context.Context, id string) (store.Passkey, error) {
	var r passkeyRow
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &r, `SELECT `+passkeyColumns+` FROM passkeys WHERE id = $1`, id)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Passkey{}, fmt.Errorf("postgres: passkey: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Passkey{}, wrap("passkey", err)
	}
	return r.passkey(), nil
}

// UsePasskey advances the signature counter, only forwards: one conditional
// UPDATE, so of concurrent uses with one counter value one wins.
func (s *Store) UsePasskey(ctx context.Context, id string, signCount uint32, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE passkeys SET sign_count = $1, last_used_at = $2
		WHERE id = $3 AND ((sign_count = 0 AND $1 = 0) OR $1 > sign_count)`, int64(signCount), toDB(now), id)
	if err != nil {
		return wrap("use passkey", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("use passkey", err)
	} else if n == 1 {
		return nil
	}
	if _, err := s.PasskeyByID(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("postgres: use passkey: signature counter %d does not move forward: %w", signCount, store.ErrConflict)
}

// RemovePasskey deletes one of the user's passkeys.
func (s *Store) RemovePasskey(ctx context.Context, userID, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM passkeys WHERE user_id = $1 AND id = $2`, userID, id)
	return oneRow(res, err, "remove passkey", id)
}
