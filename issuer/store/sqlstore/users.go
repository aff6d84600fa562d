package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// CreateUser inserts u. A username taken by any user, deleted or not and in
// any letter case, is store.ErrConflict, as is a reused id.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if u.ID == "" || u.Username == "" {
		return s.d.errorf("create user: empty id or username")
	}
	return s.insert(ctx, s.db, "create user", fmt.Sprintf("%q", u.Username), s.q.InsertUser,
		u.ID, u.Username, u.PasswordHash, u.Disabled, ToDB(u.CreatedAt), ToNullDB(u.DeletedAt))
}

// UserByName looks a user up by name in any letter case; deleted users are
// store.ErrNotFound.
func (s *Store) UserByName(ctx context.Context, username string) (store.User, error) {
	return s.user(ctx, "user by name", s.q.UserByName, username)
}

// UsernameTaken reports whether any user, deleted or not, has username.
func (s *Store) UsernameTaken(ctx context.Context, username string) (bool, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, s.q.UsernameTaken, username); err != nil {
		return false, s.d.Wrap("username taken", err)
	}
	return n > 0, nil
}

// UserByID looks a user up by id; deleted users are store.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (store.User, error) {
	return s.user(ctx, "user by id", s.q.LiveUserByID, id)
}

func (s *Store) user(ctx context.Context, op, query, arg string) (store.User, error) {
	var r UserRow
	if err := s.get(ctx, op, fmt.Sprintf("%q", arg), &r, query, arg); err != nil {
		return store.User{}, err
	}
	return r.User(), nil
}

// ListUsers returns every user that is not deleted, by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := list[UserRow](ctx, s, "list users", s.q.ListUsers)
	return Convert(rows, UserRow.User), err
}

// SetDisabled enables or disables a user. Disabling revokes every session in
// the same transaction, so no session outlives the decision.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool, now time.Time) error {
	return s.inTx(ctx, "set disabled", func(tx *sqlx.Tx) error {
		if err := s.updateUser(ctx, tx, "set disabled", userID, s.q.SetDisabled, disabled, userID); err != nil || !disabled {
			return err
		}
		return s.revokeUserSessions(ctx, tx, userID, "", store.ReasonUserDisabled, now)
	})
}

// SetPassword replaces the password hash and revokes every other session of
// the user (all of them when keepSID is empty) in the same transaction.
func (s *Store) SetPassword(ctx context.Context, userID, hash, keepSID string, now time.Time) error {
	return s.inTx(ctx, "set password", func(tx *sqlx.Tx) error {
		if err := s.updateUser(ctx, tx, "set password", userID, s.q.SetPassword, hash, userID); err != nil {
			return err
		}
		return s.revokeUserSessions(ctx, tx, userID, keepSID, store.ReasonPasswordChange, now)
	})
}

// ReplacePassword replaces the password hash and leaves every session alone.
func (s *Store) ReplacePassword(ctx context.Context, userID, hash string) error {
	return s.execOne(ctx, s.db, "replace password", fmt.Sprintf("%q", userID), s.q.SetPassword, hash, userID)
}

// DeleteUser marks the user deleted, clears its password hash and revokes
// every session, in one transaction. The row stays, so the name stays taken.
func (s *Store) DeleteUser(ctx context.Context, userID string, now time.Time) error {
	return s.inTx(ctx, "delete user", func(tx *sqlx.Tx) error {
		if err := s.updateUser(ctx, tx, "delete user", userID, s.q.DeleteUser, ToDB(now), userID); err != nil {
			return err
		}
		// The provider accounts are free again: the person may sign up anew.
		if _, err := s.exec(ctx, tx, "delete user's provider links", s.rebind(qDeleteIdentities), userID); err != nil {
			return err
		}
		return s.revokeUserSessions(ctx, tx, userID, "", store.ReasonUserDeleted, now)
	})
}

// updateUser runs an UPDATE of one live user; no row changed means the user
// does not exist or is deleted. Where rows are locked, the UPDATE locks the
// user's row until the transaction ends, which is what the share lock of
// liveUser and CreateSession waits on.
func (s *Store) updateUser(ctx context.Context, tx *sqlx.Tx, op, userID, query string, args ...any) error {
	return s.execOne(ctx, tx, op, fmt.Sprintf("%q", userID), query, args...)
}

// liveUser checks, inside tx and under the dialect's share lock, that the
// user exists and is not deleted, so that a deletion racing with the
// caller's write either waits for it or is seen by it.
func (s *Store) liveUser(ctx context.Context, tx *sqlx.Tx, op, userID string) error {
	var one int
	return s.getTx(ctx, tx, op, fmt.Sprintf("user %q", userID), &one, s.q.LiveUser, userID)
}
