// Package store defines the issuer's persistent state (users, groups,
// sessions, refresh tokens, second factors, passkeys, challenges, events,
// server secrets) as an interface that every backend implements.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends translate driver errors into these at their boundary.
var (
	// ErrNotFound: no record matches.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a unique value (a username) is taken.
	ErrConflict = errors.New("store: conflict")
	// ErrSessionEnded: the session exists but has been revoked or has expired.
	ErrSessionEnded = errors.New("store: session ended")
	// ErrReuse: a superseded refresh token was presented outside the grace
	// window; the session has been revoked (durably) before this is returned.
	ErrReuse = errors.New("store: refresh token reuse")
	// ErrUnavailable: the database cannot be reached; callers answer 503.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrOverloaded: the store's write queue is full or a write waited in
	// it too long; nothing was written. Callers answer 503 with the
	// Retry-After an *OverloadError carries.
	ErrOverloaded = errors.New("store: overloaded")
)

// OverloadError is ErrOverloaded with how long the caller should wait
// before trying again.
type OverloadError struct {
	Op         string
	RetryAfter time.Duration
}

func (e *OverloadError) Error() string {
	return e.Op + ": " + ErrOverloaded.Error() + ", retry after " + e.RetryAfter.String()
}

// Unwrap makes errors.Is(err, ErrOverloaded) hold.
func (e *OverloadError) Unwrap() error { return ErrOverloaded }

// User is an account. ID is stable, opaque and never reused; Username is the
// lowercase DNS label. A deleted user keeps its row so the name stays taken.
type User struct {
	ID           string
	Username     string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	DeletedAt    *time.Time
}

// Session is a login session: one refresh-token family. Its ID is the token's sid.
type Session struct {
	ID           string
	UserID       string
	CreatedAt    time.Time
	AuthTime     time.Time
	ExpiresAt    time.Time // absolute end (login + session TTL)
	LastUsedAt   time.Time // for the idle TTL
	AccessUntil  time.Time // latest exp of any access token issued in it
	RevokedAt    *time.Time
	RevokeReason string
	UserAgent    string
	IP           string
}

// Active reports whether the session may still be used at now.
func (s Session) Active(now time.Time, idle time.Duration) bool {
	if s.RevokedAt != nil || !now.Before(s.ExpiresAt) {
		return false
	}
	return idle <= 0 || now.Sub(s.LastUsedAt) < idle
}

// KeptAncestors is how many superseded refresh tokens a session keeps on
// record: presenting one of them again is reuse and revokes the session; an
// older one is unknown. It bounds the rows a session holds however often it
// rotates (a refresh loop costs the disk a bounded row count, not a refusal),
// while a stolen token replayed within the last KeptAncestors rotations
// (hours, at the default access TTL) still ends the session.
const KeptAncestors = 32

// Revoke reasons recorded on sessions and in events.
const (
	ReasonLogout         = "logout"
	ReasonSignOutOthers  = "signout_others"
	ReasonSignOutOne     = "signout"
	ReasonReuse          = "refresh_reuse"
	ReasonUserDisabled   = "user_disabled"
	ReasonUserDeleted    = "user_deleted"
	ReasonPasswordChange = "password_change"
)

// RotateRequest asks to rotate the refresh token whose SHA-256 is PresentedHash.
// The caller derives the successor token from the presented one with the server
// secret (HMAC) and passes the successor's SHA-256, so every instance and every
// retry computes the same value.
type RotateRequest struct {
	PresentedHash string
	SuccessorHash string
	Now           time.Time
	Grace         time.Duration // a superseded token converges within this long of its rotation
	IdleTTL       time.Duration // a session unused this long has ended
	AccessExpiry  time.Time     // exp of the access token that will be minted; raises AccessUntil
}

// RotateOutcome says what a successful RotateRefresh did.
type RotateOutcome int

const (
	// Rotated: the presented token was current; its successor is now current.
	Rotated RotateOutcome = iota + 1
	// Converged: the presented token was the immediate predecessor of the
	// current one, within the grace window; nothing was rotated.
	Converged
)

// RotateResult is a successful rotation.
type RotateResult struct {
	Outcome RotateOutcome
	Session Session
	User    User
	// AMR is what SetSessionAMR recorded for the session, nil when nothing
	// was; Groups are the user's groups, sorted. Both are read in the
	// rotation's transaction, so the access token minted from them needs
	// no further query.
	AMR    []string
	Groups []string
}

// Revoked is one entry of the revoked-session feed.
type Revoked struct {
	SID   string
	Until time.Time
}

// MaxText is the most bytes a backend keeps of a free-text field that comes
// from a client (a User-Agent, an address, an event's username or detail).
// Such fields are stored cleaned, the same in every database: invalid UTF-8
// and control characters (NUL among them, which PostgreSQL refuses) become
// U+FFFD, and the text is cut to MaxText bytes on a character boundary.
const MaxText = 512

// Event is an audit record.
type Event struct {
	ID        int64
	At        time.Time
	Kind      string
	UserID    string // empty when unknown
	Username  string // as typed or resolved, for display
	SessionID string
	IP        string
	UserAgent string
	Detail    string
}

// Store is the issuer's persistence. Every method is safe for concurrent use by
// several goroutines and several processes sharing the same database.
// Methods that revoke commit durably before returning.
type Store interface {
	AccessStore
	FactorStore
	PasskeyStore
	RevocationStore
	IdentityStore
	RevocationLog
	ClientStore
	LogoutOutbox

	// CreateUser inserts u; ErrConflict when the username (even of a deleted user) is taken.
	CreateUser(ctx context.Context, u User) error
	// UsernameTaken reports whether a user, deleted or not, has username
	// (in any case): CreateUser would refuse it.
	UsernameTaken(ctx context.Context, username string) (bool, error)
	// UserByName looks up by lowercase username; deleted users are ErrNotFound.
	UserByName(ctx context.Context, username string) (User, error)
	// UserByID looks up by id; deleted users are ErrNotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// ListUsers returns every user that is not deleted, by username.
	ListUsers(ctx context.Context) ([]User, error)
	// SetDisabled enables or disables a user; disabling revokes every session.
	SetDisabled(ctx context.Context, userID string, disabled bool, now time.Time) error
	// SetPassword replaces the hash and revokes every session of the user except keepSID (may be empty).
	SetPassword(ctx context.Context, userID, hash, keepSID string, now time.Time) error
	// ReplacePassword replaces the hash and ends no session (the user chose
	// to stay signed in elsewhere); ErrNotFound for a missing or deleted user.
	ReplacePassword(ctx context.Context, userID, hash string) error
	// DeleteUser marks the user deleted, clears the hash, removes its
	// provider links (so the person can sign up again through them) and
	// revokes every session.
	DeleteUser(ctx context.Context, userID string, now time.Time) error

	// CreateSession inserts s and its first refresh token's hash in one
	// transaction; its UserAgent and IP are stored cleaned (MaxText). A
	// linked session (LinkedSessionID) needs its root active and of the same
	// user: else ErrSessionEnded, and a revocation of the root that races
	// with it either sees it or is seen by it.
	CreateSession(ctx context.Context, s Session, refreshHash string) error
	// Session returns a session by id, whatever its state.
	Session(ctx context.Context, sid string) (Session, error)
	// SessionByRefresh returns the session that issued the refresh token whose
	// SHA-256 is hash (current or superseded), whatever its state; it changes nothing.
	SessionByRefresh(ctx context.Context, hash string) (Session, error)
	// ListSessions returns the user's sessions still active at now (idle applied), newest use first.
	ListSessions(ctx context.Context, userID string, now time.Time, idle time.Duration) ([]Session, error)
	// RevokeSession ends one session and, when it is a root, every session
	// linked to it (LinkedSessionID), in one transaction; revoking an
	// already revoked one is not an error (its linked sessions still end).
	RevokeSession(ctx context.Context, sid, reason string, now time.Time) error
	// RevokeUserSessions ends every session of the user except exceptSID (may be empty).
	RevokeUserSessions(ctx context.Context, userID, exceptSID, reason string, now time.Time) error
	// RotateRefresh rotates or converges a refresh token in one transaction.
	// ErrNotFound: unknown token. ErrSessionEnded: revoked, expired or idle
	// session, or a disabled or deleted user. ErrReuse: the session was revoked
	// because an older token or a token past the grace window was presented.
	RotateRefresh(ctx context.Context, r RotateRequest) (RotateResult, error)
	// RevokedSince lists sessions revoked early whose AccessUntil is after since.
	RevokedSince(ctx context.Context, since time.Time) ([]Revoked, error)
	// Sweep deletes at most limit sessions (and their refresh tokens) that ended
	// before `before`; it returns how many were deleted.
	Sweep(ctx context.Context, before time.Time, limit int) (int, error)

	// Secret returns the named server secret, creating it with gen exactly once
	// across every instance (the first committed value wins).
	Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)

	// AddEvent records an audit event; its Username, IP, UserAgent and Detail
	// are stored cleaned (MaxText).
	AddEvent(ctx context.Context, e Event) error
	// Events lists the newest events first; userID "" means every user; limit <= 0 means 100.
	Events(ctx context.Context, userID string, limit int) ([]Event, error)
	// SweepEvents deletes events recorded before `before` among the limit
	// oldest ones; it returns how many were deleted, limit when more may remain.
	SweepEvents(ctx context.Context, before time.Time, limit int) (int, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
