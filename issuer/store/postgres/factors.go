package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// This file holds the store.AccessStore methods: groups and the
// authentication methods of each session.

// AddGroup makes the user a member of group; already one is not an error.
// The user's row is locked FOR SHARE, so a deletion that races with it either
// waits for the membership or is seen by it.
func (s *Store) AddGroup(ctx context.Context, userID, group string) error {
	if err := store.CheckGroupName(group); err != nil {
		return fmt.Errorf("postgres: add group: %w", err)
	}
	return s.inTx(ctx, "add group", func(tx *sqlx.Tx) error {
		if err := liveUser(ctx, tx, "add group", userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, queries.AddGroup, userID, group)
		return wrapIf("add group", err)
	})
}

// liveUser checks, inside tx and under a FOR SHARE lock, that the user exists
// and is not deleted.
func liveUser(ctx context.Context, tx *sqlx.Tx, op, userID string) error {
	var one int
	err := tx.GetContext(ctx, &one, queries.LiveUser+` FOR SHARE`, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("postgres: %s: user %q: %w", op, userID, store.ErrNotFound)
	}
	return wrapIf(op, err)
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
		return fmt.Errorf("postgres: remove group: %q is not in %q: %w", userID, group, store.ErrNotFound)
	}
	return nil
}

// Groups returns the user's groups, sorted by byte value (the "C" collation).
func (s *Store) Groups(ctx context.Context, userID string) ([]string, error) {
	var groups []string
	err := s.read(ctx, func() error {
		groups = []string{}
		return s.db.SelectContext(ctx, &groups, queries.Groups, userID)
	})
	if err != nil {
		return nil, wrap("groups", err)
	}
	return groups, nil
}

// Memberships lists the memberships of every user who is not deleted.
func (s *Store) Memberships(ctx context.Context) ([]store.Membership, error) {
	var out []store.Membership
	err := s.read(ctx, func() error {
		out = []store.Membership{}
		return s.db.SelectContext(ctx, &out, queries.Memberships)
	})
	if err != nil {
		return nil, wrap("memberships", err)
	}
	return out, nil
}

// SetSessionAMR records the session's authentication methods, once.
func (s *Store) SetSessionAMR(ctx context.Context, sid string, amr []string) error {
	_, err := s.db.ExecContext(ctx, queries.InsertSessionAMR, sid, store.EncodeAMR(amr))
	switch {
	case isUnique(err):
		return fmt.Errorf("postgres: set session amr %q: %w", sid, store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("postgres: set session amr %q: %w", sid, store.ErrNotFound)
	}
	return wrapIf("set session amr", err)
}

// SessionAMR returns the session's authentication methods.
func (s *Store) SessionAMR(ctx context.Context, sid string) ([]string, error) {
	var v string
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &v, queries.SessionAMR, sid)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("postgres: session amr %q: %w", sid, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("session amr", err)
	}
	return store.DecodeAMR(v), nil
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
