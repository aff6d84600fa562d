package store

import (
	"context"
	"time"
)

// Client is a registered OpenID Connect client (relying party).
type Client struct {
	// ID is the client_id: random, public, never reused.
	ID string
	// Name is the operator's label, unique; `issuer client` commands take it.
	Name string
	// SecretHash is the hex SHA-256 of the client secret, empty for a public
	// client. The secret is 256 random bits, so a fast hash loses nothing.
	SecretHash string
	// Public clients (single-page and native apps) have no secret and must
	// use PKCE.
	Public bool
	// RedirectURIs are matched exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	// IDTokenAlg signs the client's ID tokens: RS256, ES256 or EdDSA.
	IDTokenAlg string
	// RequireGroups admits only members of any of these groups (none: everyone).
	RequireGroups   []string
	CreatedAt       time.Time
	SecretRotatedAt *time.Time
}

// AuthCode is an authorization code, stored by the SHA-256 of the code.
type AuthCode struct {
	Hash          string
	ClientID      string
	UserID        string
	SessionID     string
	RedirectURI   string
	Scope         string
	Nonce         string
	CodeChallenge string // S256 challenge; empty when the client sent none
	AuthTime      time.Time
	AMR           []string
	// ACR is the acr_values class the session met ('' when none was asked for).
	ACR       string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// ClientToken is an opaque access token issued to a client, stored by its
// SHA-256, with the code it was issued for.
type ClientToken struct {
	Hash      string
	CodeHash  string
	ClientID  string
	UserID    string
	SessionID string
	Scope     string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// ClientRefresh is a client refresh token (scope offline_access), stored by
// its SHA-256. FamilyID is the hash of the code that began its family.
type ClientRefresh struct {
	Hash      string
	FamilyID  string
	ClientID  string
	UserID    string
	SessionID string
	Scope     string
	AuthTime  time.Time
	AMR       []string
	ACR       string // the code's, kept by the family
	CreatedAt time.Time
}

// ClientStore keeps the OpenID Provider's clients, codes and tokens.
type ClientStore interface {
	// CreateClient inserts c; ErrConflict when its id or name is taken.
	CreateClient(ctx context.Context, c Client) error
	// ClientByID returns a client by client_id.
	ClientByID(ctx context.Context, id string) (Client, error)
	// ClientByName returns a client by name.
	ClientByName(ctx context.Context, name string) (Client, error)
	// ListClients returns every client, by name.
	ListClients(ctx context.Context) ([]Client, error)
	// RemoveClient deletes a client with its codes and tokens, which stop
	// working at once.
	RemoveClient(ctx context.Context, id string) error
	// SetClientSecret replaces a confidential client's secret hash;
	// ErrNotFound for an unknown or public client.
	SetClientSecret(ctx context.Context, id, secretHash string, now time.Time) error

	// CreateCode stores a new code (and prunes codes expired long ago);
	// ErrNotFound when its client or user is gone.
	CreateCode(ctx context.Context, c AuthCode) error
	// RedeemCode marks the code used and returns it. Exactly one of any
	// number of concurrent redemptions succeeds. ErrNotFound: unknown code.
	// ErrReuse: the code was used before; every token issued for it (access
	// and refresh, of its whole family) has been revoked (durably) before this is returned. Expiry is the caller's to
	// check on the returned code.
	RedeemCode(ctx context.Context, hash string, now time.Time) (AuthCode, error)
	// CreateClientToken stores a token issued for a redeemed code or a
	// refresh, and records in the same transaction that the client received
	// a token in t.SessionID (back-channel logout notifies it when the
	// session ends). ErrSessionEnded: the session is revoked or past its
	// end, and nothing was stored.
	CreateClientToken(ctx context.Context, t ClientToken) error
	// CreateClientRefresh stores the first refresh token of a family.
	CreateClientRefresh(ctx context.Context, r ClientRefresh) error
	// RotateClientRefresh supersedes the current refresh token whose hash is
	// presentedHash, issued to clientID, and stores successorHash in its
	// family, in one transaction; exactly one of concurrent rotations wins.
	// It returns the presented token's record. ErrNotFound: unknown, revoked,
	// another client's or a removed client's token. ErrReuse: a superseded
	// token; its family and the access tokens issued in it have been revoked
	// (durably) before this is returned.
	RotateClientRefresh(ctx context.Context, clientID, presentedHash, successorHash string, now time.Time) (ClientRefresh, error)
	// ClientToken returns a token that is not revoked and not expired at now,
	// of a client that still exists; ErrNotFound otherwise.
	ClientToken(ctx context.Context, hash string, now time.Time) (ClientToken, error)
}

// PendingLogout is a back-channel logout still to deliver (OpenID
// Back-Channel Logout 1.0): a session ended in which the client received a
// token. The logout token is made at each attempt from these fields.
type PendingLogout struct {
	ClientID   string
	SessionID  string
	UserID     string
	Reason     string // the session's revoke reason, or ReasonExpired
	CreatedAt  time.Time
	NextAt     time.Time
	Attempts   int // attempts made so far
	URI        string
	IDTokenAlg string
}

// ReasonExpired marks a back-channel logout for a session that reached its
// absolute end or went idle rather than being revoked.
const ReasonExpired = "expired"

// LogoutOutbox is the durable outbox of back-channel logouts. Rows are
// written by the transactions that end sessions (every revocation of the
// Store, and ExpireGrants for sessions that ran out), one per client and
// session, only for clients with a back-channel URI that received a token
// in the session.
type LogoutOutbox interface {
	// DueLogouts returns at most limit rows whose next attempt is due at
	// now, the earliest due first, with their client's URI and algorithm.
	DueLogouts(ctx context.Context, now time.Time, limit int) ([]PendingLogout, error)
	// ClaimLogout counts an attempt at p and moves its next attempt to
	// retryAt, if p is still as read (its Attempts unchanged): false when
	// another delivery claimed it first or it is gone.
	ClaimLogout(ctx context.Context, p PendingLogout, retryAt time.Time) (bool, error)
	// DeleteLogout removes a row: delivered, or given up.
	DeleteLogout(ctx context.Context, clientID, sessionID string) error
	// ExpireGrants ends the grants of at most limit sessions that ran out
	// at now (absolute end, idle for idle when idle > 0, or swept) and
	// were not revoked: their logouts join the outbox. It returns how many
	// sessions it handled (limit when more may remain).
	ExpireGrants(ctx context.Context, now time.Time, idle time.Duration, limit int) (int, error)
	// PruneLogouts drops rows created before olderThan and, for each
	// client, all but its perClient newest rows; it returns what it dropped.
	PruneLogouts(ctx context.Context, olderThan time.Time, perClient int) ([]PendingLogout, error)
}
