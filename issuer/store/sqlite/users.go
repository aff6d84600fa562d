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

// CreateUser inserts u. A username taken by any user, deleted or not and in
// any letter case, is store.ErrConflict, as is a reused id.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if u.ID == "" || u.Username == "" {
		return errors.New("sqlite: create user: empty id or username")
	}
	_, err := s.db.ExecContext(ctx, queries.InsertUser,
		u.ID, u.Username, u.PasswordHash, u.Disabled, sqlstore.ToDB(u.CreatedAt), sqlstore.ToNullDB(u.DeletedAt))
	if isConstraint(err, sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey) {
		return fmt.Errorf("sqlite: create user %q: %w", u.Username, store.ErrConflict)
	}
	if err != nil {
		return wrap("create user", err)
	}
	return nil
}

// userByName matches in any letter case: the column's collation is NOCASE.
const userByName = `SELECT ` + sqlstore.UserColumns + ` FROM users WHERE username = ? AND deleted_at IS NULL`

// UserByName looks a user up by name; deleted users are store.ErrNotFound.
func (s *Store) UserByName(ctx context.Context, username string) (store.User, error) {
	return s.user(ctx, "user by name", userByName, username)
}

// UserByID looks a user up by id; deleted users are store.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (store.User, error) {
	return s.user(ctx, "user by id", queries.LiveUserByID, id)
}

func (s *Store) user(ctx context.Context, op, query, arg string) (store.User, error) {
	var r sqlstore.UserRow
	err := s.db.GetContext(ctx, &r, query, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("sqlite: %s %q: %w", op, arg, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, wrap(op, err)
	}
	return r.User(), nil
}

// ListUsers returns every user that is not deleted, by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	var rows []sqlstore.UserRow
	err := s.db.SelectContext(ctx, &rows, queries.ListUsers)
	if err != nil {
		return nil, wrap("list users", err)
	}
	return sqlstore.Convert(rows, sqlstore.UserRow.User), nil
}

// SetDisabled enables or disables a user. Disabling revokes every session in
// the same transaction, so no session outlives the decision.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool, now time.Time) error {
	return s.inTx(ctx, "set disabled", func(tx *sqlx.Tx) error {
		if err := updateUser(ctx, tx, "set disabled", userID,
			queries.SetDisabled, disabled, userID); err != nil {
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
			queries.SetPassword, hash, userID); err != nil {
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
			queries.DeleteUser,
			sqlstore.ToDB(now), userID); err != nil {
			return err
		}
		return revokeUserSessions(ctx, tx, userID, "", store.ReasonUserDeleted, now)
	})
}

// updateUser runs an UPDATE of one live user; no row changed means the user
// does not exist or is deleted.
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
		return fmt.Errorf("sqlite: %s %q: %w", op, userID, store.ErrNotFound)
	}
	return nil
}
