package sqlstore

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// userRevocationKeep is how long a user-level revocation stays after its
// until: far past the feed's window, so pruning never races with it.
const userRevocationKeep = time.Hour

// The user-level revocation statements, written once with '?' and rebound
// per dialect when run.
const (
	// The latest access_until of the sessions a user-level revocation ends.
	qUserAccessUntil      = `SELECT COALESCE(MAX(access_until), 0) FROM sessions WHERE user_id = ? AND id <> ?`
	qInsertUserRevocation = `INSERT INTO user_revocations (user_id, before_at, until_at, except_sid, created_at)
		VALUES (?, ?, ?, ?, ?)`
	qPruneUserRevocations = `DELETE FROM user_revocations WHERE until_at < ?`
	qUserRevocationsSince = `SELECT user_id, before_at, until_at, except_sid FROM user_revocations
		WHERE until_at > ? ORDER BY user_id, before_at, except_sid, until_at`
	// A revoked session goes in the feed on its own unless a user-level
	// revocation covers it: its user, not spared, its last token minted
	// before the cut (last_used_at only grows, with every token minted) and
	// expiring by the entry's until.
	qSessionRevocationsSince = `SELECT s.id, s.access_until FROM sessions s
		WHERE s.revoked_at IS NOT NULL AND s.access_until > ?
		AND NOT EXISTS (SELECT 1 FROM user_revocations r
			WHERE r.user_id = s.user_id AND r.except_sid <> s.id
			AND r.before_at > s.last_used_at AND r.until_at >= s.access_until)
		ORDER BY s.id`
)

// UserRevocationRow is a user_revocations row as the feed reads it.
type UserRevocationRow struct {
	UserID    string `db:"user_id"`
	BeforeAt  int64  `db:"before_at"`
	UntilAt   int64  `db:"until_at"`
	ExceptSID string `db:"except_sid"`
}

// UserRevocation is the row as a store.UserRevocation.
func (r UserRevocationRow) UserRevocation() store.UserRevocation {
	return store.UserRevocation{UserID: r.UserID, Before: FromDB(r.BeforeAt), Until: FromDB(r.UntilAt), ExceptSID: r.ExceptSID}
}

// recordUserRevocation records, in the caller's transaction and before its
// sessions are marked revoked, one row for every session of the user but
// exceptSID: iat before now's whole second, until the latest access_until
// among them. Nothing is recorded when no token of theirs is still valid.
// It returns the row, or nil when none was recorded.
func (s *Store) recordUserRevocation(ctx context.Context, tx *sqlx.Tx, userID, exceptSID string, now time.Time) (*UserRevocationRow, error) {
	const op = "record user revocation"
	var until int64
	if err := tx.GetContext(ctx, &until, s.rebind(qUserAccessUntil), userID, exceptSID); err != nil {
		return nil, s.d.Wrap(op, err)
	}
	if until <= ToDB(now) {
		return nil, nil
	}
	row := &UserRevocationRow{UserID: userID, BeforeAt: ToDB(now.Truncate(time.Second)), UntilAt: until, ExceptSID: exceptSID}
	if _, err := s.exec(ctx, tx, op, s.rebind(qInsertUserRevocation), userID, row.BeforeAt, until, exceptSID, ToDB(now)); err != nil {
		return nil, err
	}
	_, err := s.exec(ctx, tx, op, s.rebind(qPruneUserRevocations), ToDB(now.Add(-userRevocationKeep)))
	return row, err
}

// RevocationsSince implements store.RevocationStore. The sessions are read
// before the user-level rows: rows are only added (or pruned long after
// their window), so every row that hid a session from the first read is in
// the second.
func (s *Store) RevocationsSince(ctx context.Context, since time.Time) ([]store.Revoked, []store.UserRevocation, error) {
	sessions, err := list[RevokedRow](ctx, s, "revocations since", s.rebind(qSessionRevocationsSince), ToDB(since))
	if err != nil {
		return nil, nil, err
	}
	users, err := list[UserRevocationRow](ctx, s, "revocations since", s.rebind(qUserRevocationsSince), ToDB(since))
	if err != nil {
		return nil, nil, err
	}
	return Convert(sessions, RevokedRow.Revoked), Convert(users, UserRevocationRow.UserRevocation), nil
}

func (s *Store) rebind(q string) string { return sqlx.Rebind(s.d.BindType, q) }
