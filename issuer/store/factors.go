package store

import (
	"context"
	"time"
)

// FactorStore holds second factors: a TOTP secret per user, single-use
// recovery codes, and short-lived single-use challenges (a sign-in waiting
// for its second factor, a WebAuthn ceremony). Store embeds it.
type FactorStore interface {
	// TOTP returns the user's TOTP factor; ErrNotFound when there is none.
	TOTP(ctx context.Context, userID string) (TOTP, error)
	// EnableTOTP stores t and replaces the user's recovery codes with
	// recoveryHashes, in one transaction. ErrConflict: the user has a TOTP
	// factor already. ErrNotFound: no such user, or a deleted one.
	EnableTOTP(ctx context.Context, t TOTP, recoveryHashes []string) error
	// DisableTOTP removes the user's TOTP factor; ErrNotFound when there is none.
	DisableTOTP(ctx context.Context, userID string) error
	// UseTOTPStep records that the code of time step `step` was used, only
	// if it is later than every step used before, so that each code works
	// once (and no older one after it). ErrConflict: step is not later.
	// ErrNotFound: the user has no TOTP factor.
	UseTOTPStep(ctx context.Context, userID string, step int64) error

	// ReplaceRecoveryCodes makes hashes (SHA-256, hex) the user's only
	// recovery codes, unused; none removes them all.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error
	// UseRecoveryCode marks the user's unused code with this hash used at
	// now; ErrNotFound when there is no such unused code. Exactly one of
	// several concurrent uses succeeds.
	UseRecoveryCode(ctx context.Context, userID, hash string, now time.Time) error
	// RecoveryCodesLeft counts the user's unused recovery codes.
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)

	// PutChallenge stores c; ErrConflict when its ID is taken. It may
	// delete some challenges that expired before c.CreatedAt.
	PutChallenge(ctx context.Context, c Challenge) error
	// GetChallenge returns the challenge with this ID if it has not expired
	// at now; ErrNotFound otherwise. It changes nothing.
	GetChallenge(ctx context.Context, id string, now time.Time) (Challenge, error)
	// TakeChallenge deletes and returns the challenge with this ID if it has
	// not expired at now; ErrNotFound otherwise. Exactly one of several
	// concurrent takes succeeds: a challenge is used once.
	TakeChallenge(ctx context.Context, id string, now time.Time) (Challenge, error)
}

// TOTP is a user's time-based one-time password factor (RFC 6238).
type TOTP struct {
	UserID string
	// Secret is the shared secret in base32, as the authenticator app has
	// it. It is stored as is: the issuer must read it to check codes.
	Secret    string
	CreatedAt time.Time
	// LastStep is the time step (Unix time / period) of the last code used;
	// a code is accepted only for a later step.
	LastStep int64
}

// Challenge is a short-lived, single-use record a browser refers to by a
// random handle; ID is the handle's SHA-256, so the database alone cannot
// be used to answer one.
type Challenge struct {
	ID        string
	Kind      string // what it is for, e.g. ChallengeSecondFactor
	UserID    string // empty when not yet known (a passkey sign-in)
	Data      string // kind-specific, e.g. JSON
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Challenge kinds.
const (
	// ChallengeSecondFactor: a password was right; the sign-in waits for a
	// second factor.
	ChallengeSecondFactor = "second_factor"
)
