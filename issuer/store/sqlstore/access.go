package sqlstore

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// This file holds the store.AccessStore methods: groups and the
// authentication methods of each session.

// AddGroup makes the user a member of group; already one is not an error.
func (s *Store) AddGroup(ctx context.Context, userID, group string) error {
	if err := wire.CheckGroupName(group); err != nil {
		return s.d.errorf("add group: %w", err)
	}
	return s.inTx(ctx, "add group", func(tx *sqlx.Tx) error {
		if err := s.liveUser(ctx, tx, "add group", userID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, "add group", s.q.AddGroup, userID, group)
		return err
	})
}

// RemoveGroup ends a membership; store.ErrNotFound when there is none.
func (s *Store) RemoveGroup(ctx context.Context, userID, group string) error {
	return s.execOne(ctx, s.db, "remove group", fmt.Sprintf("%q in %q", userID, group), s.q.RemoveGroup, userID, group)
}

// Groups returns the user's groups, sorted by byte value (SQLite's BINARY,
// PostgreSQL's "C" collation).
func (s *Store) Groups(ctx context.Context, userID string) ([]string, error) {
	return list[string](ctx, s, "groups", s.q.Groups, userID)
}

// Memberships lists the memberships of every user who is not deleted.
func (s *Store) Memberships(ctx context.Context) ([]store.Membership, error) {
	return list[store.Membership](ctx, s, "memberships", s.q.Memberships)
}

// SetSessionAMR records the session's authentication methods, once.
func (s *Store) SetSessionAMR(ctx context.Context, sid string, amr []string) error {
	return s.insert(ctx, s.db, "set session amr", fmt.Sprintf("%q", sid), s.q.InsertSessionAMR, sid, store.EncodeAMR(amr))
}

// SessionAMR returns the session's authentication methods.
func (s *Store) SessionAMR(ctx context.Context, sid string) ([]string, error) {
	var v string
	if err := s.get(ctx, "session amr", fmt.Sprintf("%q", sid), &v, s.q.SessionAMR, sid); err != nil {
		return nil, err
	}
	return store.DecodeAMR(v), nil
}
