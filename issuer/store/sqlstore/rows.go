package sqlstore

import (
	"database/sql"
	"slices"
	"strings"

	"github.com/canopy-sso/canopy/issuer/store"
)

// Rows as both backends store them: the same columns and types, times as Unix
// microseconds (see ToDB), NULL as sql.NullInt64.

// DefaultEventLimit is how many events a listing returns when the caller
// sets no limit.
const DefaultEventLimit = 100

// ChallengeSweep bounds how many expired challenges one PutChallenge deletes.
const ChallengeSweep = 100

// SessionRow is a sessions row, including the rotation state that
// store.Session does not expose.
type SessionRow struct {
	ID           string        `db:"id"`
	UserID       string        `db:"user_id"`
	CreatedAt    int64         `db:"created_at"`
	AuthTime     int64         `db:"auth_time"`
	ExpiresAt    int64         `db:"expires_at"`
	LastUsedAt   int64         `db:"last_used_at"`
	AccessUntil  int64         `db:"access_until"`
	RevokedAt    sql.NullInt64 `db:"revoked_at"`
	RevokeReason string        `db:"revoke_reason"`
	UserAgent    string        `db:"user_agent"`
	IP           string        `db:"ip"`
	CurrentHash  string        `db:"current_hash"`
	PrevHash     string        `db:"prev_hash"`
	RotatedAt    sql.NullInt64 `db:"rotated_at"`
}

// SessionColumns are the columns of SessionRow, in table order.
const SessionColumns = `id, user_id, created_at, auth_time, expires_at, last_used_at, access_until,
	revoked_at, revoke_reason, user_agent, ip, current_hash, prev_hash, rotated_at`

// Session is the row as a store.Session.
func (r SessionRow) Session() store.Session {
	return store.Session{
		ID:           r.ID,
		UserID:       r.UserID,
		CreatedAt:    FromDB(r.CreatedAt),
		AuthTime:     FromDB(r.AuthTime),
		ExpiresAt:    FromDB(r.ExpiresAt),
		LastUsedAt:   FromDB(r.LastUsedAt),
		AccessUntil:  FromDB(r.AccessUntil),
		RevokedAt:    FromNullDB(r.RevokedAt),
		RevokeReason: r.RevokeReason,
		UserAgent:    r.UserAgent,
		IP:           r.IP,
	}
}

// RotationRow is what a rotation reads in one query: the presented token's
// session with its refresh state, the session's user (even a deleted one:
// Decide says what that means), the session's authentication methods (NULL
// when none were recorded) and the user's groups joined by spaces (NULL
// when none: a group name holds no space).
type RotationRow struct {
	SessionRow
	Username      string         `db:"username"`
	PasswordHash  string         `db:"password_hash"`
	Disabled      bool           `db:"disabled"`
	UserCreatedAt int64          `db:"user_created_at"`
	UserDeletedAt sql.NullInt64  `db:"user_deleted_at"`
	AMR           sql.NullString `db:"amr"`
	GroupNames    sql.NullString `db:"group_names"`
}

// Result is the row as what RotateRefresh returns, before it decides.
func (r RotationRow) Result() store.RotateResult {
	res := store.RotateResult{
		Session: r.Session(),
		User: UserRow{ID: r.UserID, Username: r.Username, PasswordHash: r.PasswordHash, Disabled: r.Disabled,
			CreatedAt: r.UserCreatedAt, DeletedAt: r.UserDeletedAt}.User(),
		Groups: strings.Fields(r.GroupNames.String),
	}
	if r.AMR.Valid {
		res.AMR = append([]string{}, store.DecodeAMR(r.AMR.String)...)
	}
	// The aggregate's order is unspecified; Groups sorts by byte value.
	slices.Sort(res.Groups)
	return res
}

// State is the row's refresh state for store.RotateRequest.Decide.
func (r RotationRow) State(res store.RotateResult) store.RotationState {
	return store.RotationState{Session: res.Session, User: res.User, CurrentHash: r.CurrentHash, PrevHash: r.PrevHash,
		RotatedAt: FromNullDB(r.RotatedAt)}
}

// RevokedRow is the part of a sessions row the revoked feed publishes.
type RevokedRow struct {
	ID          string `db:"id"`
	AccessUntil int64  `db:"access_until"`
}

// Revoked is the row as a store.Revoked.
func (r RevokedRow) Revoked() store.Revoked {
	return store.Revoked{SID: r.ID, Until: FromDB(r.AccessUntil)}
}

// UserRow is a users row.
type UserRow struct {
	ID           string        `db:"id"`
	Username     string        `db:"username"`
	PasswordHash string        `db:"password_hash"`
	Disabled     bool          `db:"disabled"`
	CreatedAt    int64         `db:"created_at"`
	DeletedAt    sql.NullInt64 `db:"deleted_at"`
}

// UserColumns are the columns of UserRow, in table order.
const UserColumns = `id, username, password_hash, disabled, created_at, deleted_at`

// User is the row as a store.User.
func (r UserRow) User() store.User {
	return store.User{
		ID:           r.ID,
		Username:     r.Username,
		PasswordHash: r.PasswordHash,
		Disabled:     r.Disabled,
		CreatedAt:    FromDB(r.CreatedAt),
		DeletedAt:    FromNullDB(r.DeletedAt),
	}
}

// EventRow is an events row.
type EventRow struct {
	ID        int64  `db:"id"`
	At        int64  `db:"at"`
	Kind      string `db:"kind"`
	UserID    string `db:"user_id"`
	Username  string `db:"username"`
	SessionID string `db:"session_id"`
	IP        string `db:"ip"`
	UserAgent string `db:"user_agent"`
	Detail    string `db:"detail"`
}

// EventColumns are the columns of EventRow, in table order.
const EventColumns = `id, at, kind, user_id, username, session_id, ip, user_agent, detail`

// Event is the row as a store.Event.
func (r EventRow) Event() store.Event {
	return store.Event{
		ID: r.ID, At: FromDB(r.At), Kind: r.Kind, UserID: r.UserID, Username: r.Username,
		SessionID: r.SessionID, IP: r.IP, UserAgent: r.UserAgent, Detail: r.Detail,
	}
}

// TOTPRow is a totp row without its key, the user id.
type TOTPRow struct {
	Secret    string `db:"secret"`
	CreatedAt int64  `db:"created_at"`
	LastStep  int64  `db:"last_step"`
}

// TOTP is the row of userID as a store.TOTP.
func (r TOTPRow) TOTP(userID string) store.TOTP {
	return store.TOTP{UserID: userID, Secret: r.Secret, CreatedAt: FromDB(r.CreatedAt), LastStep: r.LastStep}
}

// ChallengeRow is a challenges row.
type ChallengeRow struct {
	ID        string `db:"id"`
	Kind      string `db:"kind"`
	UserID    string `db:"user_id"`
	Data      string `db:"data"`
	CreatedAt int64  `db:"created_at"`
	ExpiresAt int64  `db:"expires_at"`
}

// ChallengeColumns are the columns of ChallengeRow, in table order.
const ChallengeColumns = `id, kind, user_id, data, created_at, expires_at`

// Challenge is the row as a store.Challenge.
func (r ChallengeRow) Challenge() store.Challenge {
	return store.Challenge{ID: r.ID, Kind: r.Kind, UserID: r.UserID, Data: r.Data,
		CreatedAt: FromDB(r.CreatedAt), ExpiresAt: FromDB(r.ExpiresAt)}
}

// PasskeyRow is a passkeys row.
type PasskeyRow struct {
	ID         string        `db:"id"`
	UserID     string        `db:"user_id"`
	Name       string        `db:"name"`
	Credential string        `db:"credential"`
	SignCount  int64         `db:"sign_count"`
	CreatedAt  int64         `db:"created_at"`
	LastUsedAt sql.NullInt64 `db:"last_used_at"`
}

// PasskeyColumns are the columns of PasskeyRow, in table order.
const PasskeyColumns = `id, user_id, name, credential, sign_count, created_at, last_used_at`

// Passkey is the row as a store.Passkey.
func (r PasskeyRow) Passkey() store.Passkey {
	return store.Passkey{ID: r.ID, UserID: r.UserID, Name: r.Name, Credential: r.Credential,
		SignCount: uint32(r.SignCount), CreatedAt: FromDB(r.CreatedAt), LastUsedAt: FromNullDB(r.LastUsedAt)}
}

// Convert applies conv to every row. The result is never nil, so an empty
// listing is an empty slice.
func Convert[R, T any](rows []R, conv func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out
}
