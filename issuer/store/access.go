package store

import (
	"context"
	"strings"
)

// AccessStore holds what access rules read: a user's groups, and how each
// session's sign-in was authenticated. Store embeds it.
type AccessStore interface {
	// AddGroup makes the user a member of group; being one already is not an
	// error. ErrNotFound: no such user, or a deleted one.
	AddGroup(ctx context.Context, userID, group string) error
	// RemoveGroup ends the user's membership of group; ErrNotFound when the
	// user is not a member.
	RemoveGroup(ctx context.Context, userID, group string) error
	// Groups returns the user's groups, sorted; none is an empty list.
	Groups(ctx context.Context, userID string) ([]string, error)
	// Memberships lists every membership of a user who is not deleted, by
	// group and then username.
	Memberships(ctx context.Context) ([]Membership, error)

	// SetSessionAMR records how the session's sign-in was authenticated
	// (RFC 8176 method names, in order), once, right after CreateSession;
	// a second call for the same session is ErrConflict, so a session's
	// methods never change. ErrNotFound: no such session.
	SetSessionAMR(ctx context.Context, sid string, amr []string) error
	// SessionAMR returns what SetSessionAMR recorded; ErrNotFound when
	// nothing was (a session from before this was recorded).
	SessionAMR(ctx context.Context, sid string) ([]string, error)
}

// Membership is one user in one group.
type Membership struct {
	Group    string `db:"group_name"`
	UserID   string `db:"user_id"`
	Username string `db:"username"`
}

// EncodeAMR and DecodeAMR are how backends store a method list: the names
// joined by spaces (no method name contains one).
func EncodeAMR(amr []string) string { return strings.Join(amr, " ") }

// DecodeAMR reverses EncodeAMR.
func DecodeAMR(s string) []string { return strings.Fields(s) }
