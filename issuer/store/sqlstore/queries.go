package sqlstore

import (
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// Queries are every statement the store runs, written once with '?' and
// built for one Dialect by NewQueries: rebound to its placeholders, with its
// row locks, its GREATEST and its way of chaining writes.
type Queries struct {
	// Users. LiveUser and UserDisabled check a user inside a transaction,
	// under the dialect's share lock.
	InsertUser, UsernameTaken, UserByName, LiveUserByID, ListUsers, SetDisabled, SetPassword, DeleteUser string
	LiveUser, UserDisabled                                                                               string

	// Sessions and their refresh tokens.
	InsertSession, InsertRefreshToken, SessionByID, SessionByRefresh, SessionExists, ActiveSessions string
	RevokeSession, RevokeUserSessions, RevokedSince, Sweep                                          string

	// Rotation: RotationState reads all a rotation decides on (locking the
	// session where the dialect locks rows); Rotate advances the chain and
	// records the use in one round trip, pruning the oldest ancestors too
	// unless the dialect has one writer (then Ancestors lists those beyond
	// the kept ones and DeleteToken drops them, see pruneAncestors);
	// RecordUse records a converged use.
	RotationState, Rotate, RecordUse, Ancestors, DeleteToken string

	// Events, secrets and migrations.
	InsertEvent, Events, UserEvents, SweepEvents, Secret, InsertSecret, SchemaVersion, RecordMigration string

	// Groups and session authentication methods.
	AddGroup, RemoveGroup, Groups, Memberships, InsertSessionAMR, SessionAMR string

	// Second factors: TOTP, recovery codes, challenges.
	TOTP, InsertTOTP, DeleteTOTP, UseTOTPStep                                   string
	DeleteRecoveryCodes, InsertRecoveryCode, UseRecoveryCode, RecoveryCodesLeft string
	InsertChallenge, GetChallenge, TakeChallenge, SweepChallenges               string

	// Passkeys.
	InsertPasskey, Passkeys, PasskeyByID, UsePasskey, RemovePasskey string
}

// NewQueries returns the queries for d.
func NewQueries(d Dialect) *Queries {
	r := func(q string) string { return sqlx.Rebind(d.BindType, q) }
	greatest := func(col string) string { return col + ` = ` + d.Greatest + `(` + col + `, ?)` }
	return &Queries{
		InsertUser: r(`INSERT INTO users (` + UserColumns + `) VALUES (?, ?, ?, ?, ?, ?)`),
		UserByName: r(`SELECT ` + UserColumns + ` FROM users WHERE ` + d.UsernameMatch + ` AND deleted_at IS NULL`),
		// A deleted user keeps its row, and its name.
		UsernameTaken: r(`SELECT count(*) FROM users WHERE ` + d.UsernameMatch),
		LiveUserByID:  r(`SELECT ` + UserColumns + ` FROM users WHERE id = ? AND deleted_at IS NULL`),
		ListUsers:     r(`SELECT ` + UserColumns + ` FROM users WHERE deleted_at IS NULL ORDER BY username`),
		SetDisabled:   r(`UPDATE users SET disabled = ? WHERE id = ? AND deleted_at IS NULL`),
		SetPassword:   r(`UPDATE users SET password_hash = ? WHERE id = ? AND deleted_at IS NULL`),
		DeleteUser:    r(`UPDATE users SET deleted_at = ?, password_hash = '' WHERE id = ? AND deleted_at IS NULL`),
		LiveUser:      r(`SELECT 1 FROM users WHERE id = ? AND deleted_at IS NULL` + d.LockShare),
		UserDisabled:  r(`SELECT disabled FROM users WHERE id = ? AND deleted_at IS NULL` + d.LockShare),

		InsertSession: r(`INSERT INTO sessions (` + SessionColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL)`),
		InsertRefreshToken: r(insertRefreshToken),
		SessionByID:        r(`SELECT ` + SessionColumns + ` FROM sessions WHERE id = ?`),
		SessionByRefresh: r(`SELECT ` + SessionColumns + ` FROM sessions
			WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = ?)`),
		SessionExists: r(`SELECT 1 FROM sessions WHERE id = ?`),
		ActiveSessions: r(`SELECT ` + SessionColumns + ` FROM sessions
			WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND last_used_at > ?
			ORDER BY last_used_at DESC, id`),
		RevokeSession: r(`UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE id = ? AND revoked_at IS NULL`),
		RevokeUserSessions: r(`UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`),
		RevokedSince: r(`SELECT id, access_until FROM sessions
			WHERE revoked_at IS NOT NULL AND access_until > ? ORDER BY id`),
		Sweep: r(`DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE access_until < ? AND (expires_at < ? OR revoked_at < ?)
			LIMIT ?` + d.LockSkip + `)`),

		// One query: the token's session (locked), its user, the session's
		// methods and the user's groups, so a rotation reads once.
		RotationState: r(`SELECT ` + qualify("s.", SessionColumns) + `,
				u.username, u.password_hash, u.disabled,
				u.created_at AS user_created_at, u.deleted_at AS user_deleted_at,
				(SELECT amr FROM session_amr WHERE session_id = s.id) AS amr,
				(SELECT string_agg(group_name, ' ') FROM user_groups WHERE user_id = s.user_id) AS group_names
			FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
			WHERE t.hash = ?` + d.LockUpdate),
		// Every token stays in refresh_tokens, so that presenting it later
		// is recognised as reuse. A token's row is written once, when it is
		// issued: the session's current_hash says which one is current, and
		// every other token of the session is superseded (so a rotation
		// writes no row of the token it replaces, a page of its own in a
		// large table; superseded_at is no longer written, since schema 12).
		Rotate:    r(d.chain(rotateStatements(d, greatest)...)),
		RecordUse: r(`UPDATE sessions SET ` + greatest("last_used_at") + `, ` + greatest("access_until") + ` WHERE id = ?`),
		// The session's superseded tokens beyond the newest kept ones (see
		// pruneAncestors); SQLite's syntax, used only there.
		Ancestors: r(fmt.Sprintf(`SELECT hash FROM refresh_tokens WHERE session_id = ? AND hash <> ?
			ORDER BY created_at DESC, hash DESC LIMIT -1 OFFSET %d`, store.KeptAncestors)),
		DeleteToken: r(`DELETE FROM refresh_tokens WHERE hash = ?`),

		InsertEvent: r(`INSERT INTO events (at, kind, user_id, username, session_id, ip, user_agent, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		Events:     r(`SELECT ` + EventColumns + ` FROM events ORDER BY id DESC LIMIT ?`),
		UserEvents: r(`SELECT ` + EventColumns + ` FROM events WHERE user_id = ? ORDER BY id DESC LIMIT ?`),
		// Only the oldest rows by id are looked at, so a call costs at most
		// its limit in rows whatever the table's size, with no index on at.
		SweepEvents: r(`DELETE FROM events WHERE id IN (
			SELECT id FROM (SELECT id, at FROM events ORDER BY id LIMIT ?) oldest WHERE at < ?)`),
		Secret:          r(`SELECT value FROM secrets WHERE name = ?`),
		InsertSecret:    r(`INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`),
		SchemaVersion:   `SELECT COALESCE(MAX(version), 0) FROM migrations`,
		RecordMigration: r(`INSERT INTO migrations (version, applied_at) VALUES (?, ?)`),

		AddGroup:    r(`INSERT INTO user_groups (user_id, group_name) VALUES (?, ?) ON CONFLICT DO NOTHING`),
		RemoveGroup: r(`DELETE FROM user_groups WHERE user_id = ? AND group_name = ?`),
		Groups:      r(`SELECT group_name FROM user_groups WHERE user_id = ? ORDER BY group_name`),
		Memberships: `SELECT g.group_name, g.user_id, u.username
			FROM user_groups g JOIN users u ON u.id = g.user_id
			WHERE u.deleted_at IS NULL ORDER BY g.group_name, u.username`,
		InsertSessionAMR: r(`INSERT INTO session_amr (session_id, amr) VALUES (?, ?)`),
		SessionAMR:       r(`SELECT amr FROM session_amr WHERE session_id = ?`),

		TOTP:                r(`SELECT secret, created_at, last_step FROM totp WHERE user_id = ?`),
		InsertTOTP:          r(`INSERT INTO totp (user_id, secret, created_at, last_step) VALUES (?, ?, ?, ?)`),
		DeleteTOTP:          r(`DELETE FROM totp WHERE user_id = ?`),
		UseTOTPStep:         r(`UPDATE totp SET last_step = ? WHERE user_id = ? AND last_step < ?`),
		DeleteRecoveryCodes: r(`DELETE FROM recovery_codes WHERE user_id = ?`),
		InsertRecoveryCode:  r(`INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`),
		UseRecoveryCode: r(`UPDATE recovery_codes SET used_at = ?
			WHERE user_id = ? AND hash = ? AND used_at IS NULL`),
		RecoveryCodesLeft: r(`SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`),
		InsertChallenge:   r(`INSERT INTO challenges (` + ChallengeColumns + `) VALUES (?, ?, ?, ?, ?, ?)`),
		GetChallenge:      r(`SELECT ` + ChallengeColumns + ` FROM challenges WHERE id = ? AND expires_at > ?`),
		TakeChallenge:     r(`DELETE FROM challenges WHERE id = ? AND expires_at > ? RETURNING ` + ChallengeColumns),
		SweepChallenges: r(`DELETE FROM challenges WHERE id IN
			(SELECT id FROM challenges WHERE expires_at <= ? ORDER BY expires_at LIMIT ?` + d.LockSkip + `)`),

		InsertPasskey: r(`INSERT INTO passkeys (` + PasskeyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		Passkeys:      r(`SELECT ` + PasskeyColumns + ` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`),
		PasskeyByID:   r(`SELECT ` + PasskeyColumns + ` FROM passkeys WHERE id = ?`),
		// A counter moves forward, or stays 0 on an authenticator without one.
		UsePasskey: r(`UPDATE passkeys SET sign_count = ?, last_used_at = ?
			WHERE id = ? AND (? > sign_count OR (? AND sign_count = 0))`),
		RemovePasskey: r(`DELETE FROM passkeys WHERE user_id = ? AND id = ?`),
	}
}

// rotateStatements are the writes of Queries.Rotate, in order: the
// successor inserted, (where the dialect admits several writers) the oldest
// ancestors pruned, and the session advanced and used.
func rotateStatements(d Dialect, greatest func(string) string) []string {
	stmts := []string{insertRefreshToken}
	if !d.OneWriter {
		stmts = append(stmts, pruneAncestors)
	}
	return append(stmts, `UPDATE sessions SET current_hash = ?, prev_hash = ?, rotated_at = ?,
				`+greatest("last_used_at")+`, `+greatest("access_until")+` WHERE id = ?`)
}

// pruneAncestors keeps the newest store.KeptAncestors superseded tokens of
// a session, newest by (created_at, hash), and deletes the older ones, so
// a session holds a bounded number of rows however often it rotates. A
// token's created_at is when the one before it was superseded, so this is
// also the order in which they were superseded. On PostgreSQL it runs in
// the same statement as the rotation and sees the snapshot before it:
// every token there (the presented one included) is superseded once the
// rotation commits, and the successor it inserts is not among them.
var pruneAncestors = fmt.Sprintf(`DELETE FROM refresh_tokens WHERE session_id = ? AND hash NOT IN (
	SELECT hash FROM refresh_tokens WHERE session_id = ?
	ORDER BY created_at DESC, hash DESC LIMIT %d)`, store.KeptAncestors)

const insertRefreshToken = `INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)`

// qualify prefixes every column of a comma-separated list.
func qualify(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
