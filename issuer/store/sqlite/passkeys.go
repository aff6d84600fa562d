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

// AddPasskey stores a passkey of a live user.
func (s *Store) AddPasskey(ctx context.Context, p store.Passkey) error {
	if p.ID == "" || p.Credential == "" {
		return errors.New("sqlite: add passkey: empty id or credential")
	}
	return s.inTx(ctx, "add passkey", func(tx *sqlx.Tx) error {
		if err := liveUser(ctx, tx, "add passkey", p.UserID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, queries.InsertPasskey,
			p.ID, p.UserID, p.Name, p.Credential, int64(p.SignCount), sqlstore.ToDB(p.CreatedAt), sqlstore.ToNullDB(p.LastUsedAt))
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique) {
			return fmt.Errorf("sqlite: add passkey: %w", store.ErrConflict)
		}
		if err != nil {
			return wrap("add passkey", err)
		}
		return nil
	})
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	var rows []sqlstore.PasskeyRow
	err := s.db.SelectContext(ctx, &rows, queries.Passkeys, userID)
	if err != nil {
		return nil, wrap("passkeys", err)
	}
	return sqlstore.Convert(rows, sqlstore.PasskeyRow.Passkey), nil
}

// PasskeyByID returns the passkey with this credential ID.
func (s *Store) PasskeyByID(ctx context.Context, id string) (store.Passkey, error) {
	var r sqlstore.PasskeyRow
	err := s.db.GetContext(ctx, &r, queries.PasskeyByID, id)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Passkey{}, fmt.Errorf("sqlite: passkey: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Passkey{}, wrap("passkey", err)
	}
	return r.Passkey(), nil
}

// UsePasskey advances the signature counter, only forwards.
func (s *Store) UsePasskey(ctx context.Context, id string, signCount uint32, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE passkeys SET sign_count = ?1, last_used_at = ?2
		WHERE id = ?3 AND ((sign_count = 0 AND ?1 = 0) OR ?1 > sign_count)`, int64(signCount), sqlstore.ToDB(now), id)
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
	return fmt.Errorf("sqlite: use passkey: signature counter %d does not move forward: %w", signCount, store.ErrConflict)
}

// RemovePasskey deletes one of the user's passkeys.
func (s *Store) RemovePasskey(ctx context.Context, userID, id string) error {
	res, err := s.db.ExecContext(ctx, queries.RemovePasskey, userID, id)
	return oneRow(res, err, "remove passkey", id)
}
