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

// userRow is a users row as stored; times are Unix microseconds.
type userRow struct {
	ID           string `db:"id"`
	Username     string `db:"username"`
	PasswordHash string `db:"password_hash"`
	Disabled     bool   `db:"disabled"`
	CreatedAt    int64  `db:"created_at"`
	DeletedAt    *int64 `db:"deleted_at"`
}

const userColumns = `id, username, password_hash, disabled, created_at, deleted_at`

func (r userRow) user() store.User {
	return store.User{
		ID:           r.ID,
		Username:     r.Username,
		PasswordHash: r.PasswordHash,
		Disabled:     r.Disabled,
		CreatedAt:    fromDB(r.CreatedAt),
		DeletedAt:    fromNullDB(r.DeletedAt),
	}
}

// CreateUser inserts u. A username taken by any user, deleted or not and in
// any letter case, is store.ErrConflict, as is a reused id.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if u.ID == "" || u.Username == "" {
		return errors.New("postgres: create user: empty id or username")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.Username, u.PasswordHash, u.Disabled, toDB(u.CreatedAt), toNullDB(u.DeletedAt))
	if isUnique(err) {
		return fmt.Errorf("postgres: create user %q: %w", u.Username, store.ErrConflict)
	}
	return wrapIf("create user", err)
}

// UserByName looks a user up by name, in any letter case as SQLite's NOCASE
// does; deleted users are store.ErrNotFound.
func (s *Store) UserByName(ctx context.Context, username string) (store.User, error) {
	return s.user(ctx, "user by name", `lower(username) = lower($1)`, username)
}

// UserByID looks a user up by id; deleted users are store.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (store.User, error) {
	return s.user(ctx, "user by id", `id = $1`, id)
}

func (s *Store) user(ctx context.Context, op, where, arg string) (store.User, error) {
	var r userRow
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &r, `SELECT `+userColumns+` FROM users WHERE `+where+` AND deleted_at IS NULL`, arg)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("postgres: %s %q: %w", op, arg, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, wrap(op, err)
	}
	return r.user(), nil
}

// ListUsers returns every user that is not deleted, by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	var rows []userRow
	err := s.read(ctx, func() error {
		rows = nil
		return s.db.SelectContext(ctx, &rows, `SELECT `+userColumns+` FROM users WHERE deleted_at IS NULL ORDER BY username`)
	})
	if err != nil {
		return nil, wrap("list users", err)
	}
	users := make([]store.User, len(rows))
	for i, r := range rows {
		users[i] = r.user()
	}
	return users, nil
}

// SetDisabled enables or disables a user. Disabling revokes every session in
// the same transaction, so no session outlives the decision.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool, now time.Time) error {
	return s.inTx(ctx, "set disabled", func(tx *sqlx.Tx) error {
		if err := updateUser(ctx, tx, "set disabled", userID,
			`UPDATE users SET disabled = $1 WHERE id = $2 AND deleted_at IS NULL`, disabled, userID); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		return revokeUserSessions(ctx, tx, userID, "", store.ReasonUserDisabled, now)
	})
}

// SetPassword replaces the password hash and revokes every other session of
// the user (all of them when keepSID is empty) in the same transaction.
func (s *Store) SetPassword(ctx context.Context, userID, hash, keepSID string, now time.Time) error {
	return s.inTx(ctx, "set password", func(tx *sqlx.Tx) error {
		if err := updateUser(ctx, tx, "set password", userID,
			`UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL`, hash, userID); err != nil {
			return err
		}
		return revokeUserSessions(ctx, tx, userID, keepSID, store.ReasonPasswordChange, now)
	})
}

// DeleteUser marks the user deleted, clears its password hash and revokes
// every session, in one transaction. The row stays, so the name stays taken.
func (s *Store) DeleteUser(ctx context.Context, userID string, now time.Time) error {
	return s.inTx(ctx, "delete user", func(tx *sqlx.Tx) error {
		if err := updateUser(ctx, tx, "delete user", userID,
			`UPDATE users SET deleted_at = $1, password_hash = '' WHERE id = $2 AND deleted_at IS NULL`,
			toDB(now), userID); err != nil {
			return err
		}
		return revokeUserSessions(ctx, tx, userID, "", store.ReasonUserDeleted, now)
	})
}

// updateUser runs an UPDATE of one live user; no row changed means the user
// does not exist or is deleted. The UPDATE locks the user's row until the
// transaction ends, which is what CreateSession's FOR SHARE waits on.
func updateUser(ctx context.Context, tx *sqlx.Tx, op, userID, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s %q: %w", op, userID, store.ErrNotFound)
	}
	return nil
}
