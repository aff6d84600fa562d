package store

import (
	"context"
	"time"
)

// PasskeyStore holds WebAuthn credentials (passkeys). Store embeds it.
type PasskeyStore interface {
	// AddPasskey stores p. ErrConflict: its credential ID is registered
	// already (to anyone). ErrNotFound: no such user, or a deleted one.
	AddPasskey(ctx context.Context, p Passkey) error
	// Passkeys lists the user's passkeys, oldest first; none is an empty list.
	Passkeys(ctx context.Context, userID string) ([]Passkey, error)
	// PasskeyByID returns the passkey with this credential ID; ErrNotFound
	// when there is none.
	PasskeyByID(ctx context.Context, id string) (Passkey, error)
	// UsePasskey records a sign-in with the passkey: its authenticator's
	// new signature counter and the time. A counter that does not move
	// forward (when either value is not zero) is ErrConflict and changes
	// nothing: the passkey may have been cloned, or the assertion replayed.
	// Of concurrent uses with one counter value, one wins. ErrNotFound:
	// no such passkey.
	UsePasskey(ctx context.Context, id string, signCount uint32, now time.Time) error
	// RemovePasskey deletes the user's passkey; ErrNotFound when the user
	// has no passkey with this ID.
	RemovePasskey(ctx context.Context, userID, id string) error
}

// Passkey is one registered WebAuthn credential.
type Passkey struct {
	ID     string // the credential ID, base64url without padding
	UserID string
	Name   string // the user's label for it
	// Credential is the WebAuthn library's credential record (public key,
	// flags, transports…) as JSON; the store does not read it.
	Credential string
	SignCount  uint32
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// Challenge kinds of WebAuthn ceremonies.
const (
	ChallengePasskeyRegister = "passkey_register"
	ChallengePasskeyLogin    = "passkey_login"
)
