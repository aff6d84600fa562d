package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// This file holds the store.IdentityStore methods: links to accounts at
// upstream OpenID providers, and what a session brought from its provider.

// The statements, written once with '?' and rebound per dialect when run.
const (
	identityColumns   = `issuer, subject, user_id, provider, email, created_at`
	qInsertIdentity   = `INSERT INTO user_identities (` + identityColumns + `) VALUES (?, ?, ?, ?, ?, ?)`
	qIdentity         = `SELECT ` + identityColumns + ` FROM user_identities WHERE issuer = ? AND subject = ?`
	qIdentityByEmail  = `SELECT ` + identityColumns + ` FROM user_identities WHERE email = ? AND email <> '' ORDER BY created_at, issuer LIMIT 1`
	qIdentities       = `SELECT ` + identityColumns + ` FROM user_identities WHERE user_id = ? ORDER BY created_at, issuer`
	qDeleteIdentity   = `DELETE FROM user_identities WHERE user_id = ? AND issuer = ?`
	qDeleteIdentities = `DELETE FROM user_identities WHERE user_id = ?`
	qOtherSignIns     = `SELECT (SELECT count(*) FROM user_identities WHERE user_id = ? AND issuer <> ?) + (SELECT count(*) FROM passkeys WHERE user_id = ?)`
	qUserPasswordHash = `SELECT password_hash FROM users WHERE id = ? AND deleted_at IS NULL`
	qInsertUpstream   = `INSERT INTO session_upstream (session_id, provider, groups) VALUES (?, ?, ?)`
	qSessionUpstream  = `SELECT provider, groups FROM session_upstream WHERE session_id = ?`
)

// IdentityRow is a user_identities row.
type IdentityRow struct {
	Issuer    string `db:"issuer"`
	Subject   string `db:"subject"`
	UserID    string `db:"user_id"`
	Provider  string `db:"provider"`
	Email     string `db:"email"`
	CreatedAt int64  `db:"created_at"`
}

// Identity converts the row.
func (r IdentityRow) Identity() store.Identity {
	return store.Identity{Issuer: r.Issuer, Subject: r.Subject, UserID: r.UserID, Provider: r.Provider,
		Email: r.Email, CreatedAt: FromDB(r.CreatedAt)}
}

// LinkIdentity records id for a live user.
func (s *Store) LinkIdentity(ctx context.Context, id store.Identity) error {
	return s.inTx(ctx, "link identity", func(tx *sqlx.Tx) error {
		if err := s.liveUser(ctx, tx, "link identity", id.UserID); err != nil {
			return err
		}
		return s.insertIdentity(ctx, tx, id)
	})
}

func (s *Store) insertIdentity(ctx context.Context, ex execer, id store.Identity) error {
	if id.Issuer == "" || id.Subject == "" || id.UserID == "" {
		return s.d.errorf("link identity: empty issuer, subject or user")
	}
	return s.insert(ctx, ex, "link identity", fmt.Sprintf("%q at %q", id.Subject, id.Issuer), s.rebind(qInsertIdentity),
		id.Issuer, id.Subject, id.UserID, id.Provider, strings.ToLower(id.Email), ToDB(id.CreatedAt))
}

// CreateLinkedUser creates u and its link in one transaction.
func (s *Store) CreateLinkedUser(ctx context.Context, u store.User, id store.Identity) error {
	if u.ID == "" || u.Username == "" {
		return s.d.errorf("create linked user: empty id or username")
	}
	id.UserID = u.ID
	return s.inTx(ctx, "create linked user", func(tx *sqlx.Tx) error {
		if err := s.insert(ctx, tx, "create user", fmt.Sprintf("%q", u.Username), s.q.InsertUser,
			u.ID, u.Username, u.PasswordHash, u.Disabled, ToDB(u.CreatedAt), ToNullDB(u.DeletedAt)); err != nil {
			return err
		}
		return s.insertIdentity(ctx, tx, id)
	})
}

// Identity returns the link of (issuer, subject).
func (s *Store) Identity(ctx context.Context, issuer, subject string) (store.Identity, error) {
	var r IdentityRow
	err := s.get(ctx, "identity", fmt.Sprintf("%q at %q", subject, issuer), &r, s.rebind(qIdentity), issuer, subject)
	return r.Identity(), err
}

// IdentityByEmail returns the oldest link whose provider verified email.
func (s *Store) IdentityByEmail(ctx context.Context, email string) (store.Identity, error) {
	var r IdentityRow
	if email == "" {
		return store.Identity{}, s.d.fail("identity by email", `""`, store.ErrNotFound)
	}
	err := s.get(ctx, "identity by email", fmt.Sprintf("%q", email), &r, s.rebind(qIdentityByEmail), strings.ToLower(email))
	return r.Identity(), err
}

// Identities lists the user's links, oldest first.
func (s *Store) Identities(ctx context.Context, userID string) ([]store.Identity, error) {
	rows, err := list[IdentityRow](ctx, s, "identities", s.rebind(qIdentities), userID)
	return Convert(rows, IdentityRow.Identity), err
}

// UnlinkIdentity removes the user's link to issuer. The user's row is
// locked first (the write lock of SQLite's BEGIN IMMEDIATE, FOR UPDATE on
// PostgreSQL), so two concurrent unlinks of a user's last two ways to sign
// in cannot both pass the check.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, issuer string, keepOne bool) error {
	const op = "unlink identity"
	lock := ""
	if s.d.LockShare != "" {
		lock = " FOR UPDATE"
	}
	return s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		var hash string
		if err := s.getTx(ctx, tx, op, fmt.Sprintf("user %q", userID), &hash, s.rebind(qUserPasswordHash+lock), userID); err != nil {
			return err
		}
		if keepOne && hash == "" {
			var others int
			if err := s.getTx(ctx, tx, op, fmt.Sprintf("user %q", userID), &others, s.rebind(qOtherSignIns), userID, issuer, userID); err != nil {
				return err
			}
			if others == 0 {
				return s.d.fail(op, fmt.Sprintf("of user %q", userID), store.ErrLastLogin)
			}
		}
		return s.execOne(ctx, tx, op, fmt.Sprintf("%q of user %q", issuer, userID), s.rebind(qDeleteIdentity), userID, issuer)
	})
}

// SetSessionUpstream records the session's provider and provider groups once.
func (s *Store) SetSessionUpstream(ctx context.Context, sid, provider string, groups []string) error {
	return s.insert(ctx, s.db, "set session upstream", fmt.Sprintf("%q", sid), s.rebind(qInsertUpstream),
		sid, provider, strings.Join(groups, " "))
}

// SessionUpstream returns what SetSessionUpstream recorded.
func (s *Store) SessionUpstream(ctx context.Context, sid string) (string, []string, error) {
	var r struct {
		Provider string `db:"provider"`
		Groups   string `db:"groups"`
	}
	if err := s.get(ctx, "session upstream", fmt.Sprintf("%q", sid), &r, s.rebind(qSessionUpstream), sid); err != nil {
		return "", nil, err
	}
	return r.Provider, strings.Fields(r.Groups), nil
}
