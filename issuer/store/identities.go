package store

import (
	"context"
	"errors"
	"time"
)

// IdentityStore links accounts at upstream OpenID providers to users, by
// (provider issuer, subject) and nothing else. Store embeds it.
type IdentityStore interface {
	// LinkIdentity records id. ErrConflict: the (issuer, subject) is linked
	// already, or the user has an account of that issuer linked already.
	// ErrNotFound: no such user, or a deleted one.
	LinkIdentity(ctx context.Context, id Identity) error
	// CreateLinkedUser creates u and links id to it in one transaction, so
	// that neither exists without the other. ErrConflict: the username or
	// the identity is taken.
	CreateLinkedUser(ctx context.Context, u User, id Identity) error
	// Identity returns the link of (issuer, subject); ErrNotFound when none.
	Identity(ctx context.Context, issuer, subject string) (Identity, error)
	// IdentityByEmail returns a link whose provider verified email, the
	// oldest first; ErrNotFound when none.
	IdentityByEmail(ctx context.Context, email string) (Identity, error)
	// Identities lists the user's links, oldest first.
	Identities(ctx context.Context, userID string) ([]Identity, error)
	// UnlinkIdentity removes the user's link to issuer. With keepOne, it
	// refuses with ErrLastLogin when the user would be left with no way to
	// sign in (no password, no passkey, no other link), deciding in the same
	// transaction as the delete. ErrNotFound: no such link.
	UnlinkIdentity(ctx context.Context, userID, issuer string, keepOne bool) error
	// SetSessionUpstream records, once, the provider a session signed in
	// at and the provider groups it carries; ErrConflict when recorded.
	SetSessionUpstream(ctx context.Context, sid, provider string, groups []string) error
	// SessionUpstream returns what SetSessionUpstream recorded; ErrNotFound when nothing.
	SessionUpstream(ctx context.Context, sid string) (provider string, groups []string, err error)
}

// ErrLastLogin: the change would leave the user no way to sign in.
var ErrLastLogin = errors.New("store: the last way to sign in")

// Identity links a subject at an upstream OpenID provider to a user.
type Identity struct {
	Issuer   string // the provider's issuer URL, as its id_tokens say
	Subject  string // the provider's sub
	UserID   string
	Provider string // the --idp name at link time, for display
	// Email is the address the provider marked verified at link time,
	// lowercase; empty when it sent none or an unverified one.
	Email     string
	CreatedAt time.Time
}
