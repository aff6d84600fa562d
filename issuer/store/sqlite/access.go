package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"

	"github.com/canopy-sso/canopy/issuer/store"
)

// AddGroup makes the user a member of group; already one is not an error.
func (s *Store) AddGroup(ctx context.Context, userID, group string) error {
	if err := store.CheckGroupName(group); err != nil {
		return fmt.Errorf("sqlite: add group: %w", err)
	}
	return s.inTx(ctx, "add group", func(tx *sqlx.Tx) error {
		if err := liveUser(ctx, tx, "add group", userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, queries.AddGroup, userID, group)
		if err != nil {
			return wrap("add group", err)
		}
		return nil
	})
}

// liveUser checks, inside tx, that the user exists and is not deleted.
func liveUser(ctx context.Context, tx *sqlx.Tx, op, userID string) error {
	var one int
	err := tx.GetContext(ctx, &one, queries.LiveUser, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: user %q: %w", op, userID, store.ErrNotFound)
	}
	if err != nil {
		return wrap(op, err)
	}
	return nil
}

// RemoveGroup ends a membership; store.ErrNotFound when there is none.
func (s *Store) RemoveGroup(ctx context.Context, userID, group string) error {
	res, err := s.db.ExecContext(ctx, queries.RemoveGroup, userID, group)
	if err != nil {
		return wrap("remove group", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("remove group", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: remove group: %q is not in %q: %w", userID, group, store.ErrNotFound)
	}
	return nil
}

// Groups returns the user's groups, sorted by byte value.
func (s *Store) Groups(ctx context.Context, userID string) ([]string, error) {
	groups := []string{}
	err := s.db.SelectContext(ctx, &groups, queries.Groups, userID)
	if err != nil {
		return nil, wrap("groups", err)
	}
	return groups, nil
}

// Memberships lists the memberships of every user who is not deleted.
func (s *Store) Memberships(ctx context.Context) ([]store.Membership, error) {
	out := []store.Membership{}
	err := s.db.SelectContext(ctx, &out, queries.Memberships)
	if err != nil {
		return nil, wrap("memberships", err)
	}
	return out, nil
}

// SetSessionAMR records the session's authentication methods, once.
func (s *Store) SetSessionAMR(ctx context.Context, sid string, amr []string) error {
	_, err := s.db.ExecContext(ctx, queries.InsertSessionAMR, sid, store.EncodeAMR(amr))
	switch {
	case isConstraint(err, sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique):
		return fmt.Errorf("sqlite: set session amr %q: %w", sid, store.ErrConflict)
	case isConstraint(err, sqlite3.ErrConstraintForeignKey):
		return fmt.Errorf("sqlite: set session amr %q: %w", sid, store.ErrNotFound)
	case err != nil:
		return wrap("set session amr", err)
	}
	return nil
}

// SessionAMR returns the session's authentication methods.
func (s *Store) SessionAMR(ctx context.Context, sid string) ([]string, error) {
	var v string
	err := s.db.GetContext(ctx, &v, queries.SessionAMR, sid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: session amr %q: %w", sid, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("session amr", err)
	}
	return store.DecodeAMR(v), nil
}
