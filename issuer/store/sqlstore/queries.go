package sqlstore

import "github.com/jmoiron/sqlx"

// Queries are the statements both backends run as written, but for the
// placeholders. Each is written once with '?' and rebound for the driver by
// NewQueries; what differs beyond placeholders (row locks, MAX against
// GREATEST, statements that reuse a parameter) stays in the backend.
type Queries struct {
	// Users.
	InsertUser, LiveUserByID, ListUsers, SetDisabled, SetPassword, DeleteUser string
	// LiveUser and UserDisabled check a user inside a transaction; PostgreSQL
	// appends a row lock.
	LiveUser, UserDisabled string

	// Sessions and their refresh tokens.
	InsertSession, InsertRefreshToken, SessionByID, SessionByRefresh, ActiveSessions string
	RevokeSession, RevokeUserSessions, RevokedSince                                  string

	// Events, secrets and migrations.
	InsertEvent, Events, UserEvents, Secret, InsertSecret, SchemaVersion, RecordMigration string

	// Groups and session authentication methods.
	AddGroup, RemoveGroup, Groups, Memberships, InsertSessionAMR, SessionAMR string

	// Second factors: TOTP, recovery codes, challenges.
	TOTP, InsertTOTP, DeleteTOTP                                                string
	DeleteRecoveryCodes, InsertRecoveryCode, UseRecoveryCode, RecoveryCodesLeft string
	InsertChallenge, GetChallenge, TakeChallenge                                string

	// Passkeys.
	InsertPasskey, Passkeys, PasskeyByID, RemovePasskey string
}

// NewQueries returns the queries with placeholders for bindType (sqlx.QUESTION
// for SQLite, sqlx.DOLLAR for PostgreSQL).
func NewQueries(bindType int) *Queries {
	r := func(q string) string { return sqlx.Rebind(bindType, q) }
	return &Queries{
		InsertUser:   r(`INSERT INTO users (` + UserColumns + `) VALUES (?, ?, ?, ?, ?, ?)`),
		LiveUserByID: r(`SELECT ` + UserColumns + ` FROM users WHERE id = ? AND deleted_at IS NULL`),
		ListUsers:    r(`SELECT ` + UserColumns + ` FROM users WHERE deleted_at IS NULL ORDER BY username`),
		SetDisabled:  r(`UPDATE users SET disabled = ? WHERE id = ? AND deleted_at IS NULL`),
		SetPassword:  r(`UPDATE users SET password_hash = ? WHERE id = ? AND deleted_at IS NULL`),
		DeleteUser:   r(`UPDATE users SET deleted_at = ?, password_hash = '' WHERE id = ? AND deleted_at IS NULL`),
		LiveUser:     r(`SELECT 1 FROM users WHERE id = ? AND deleted_at IS NULL`),
		UserDisabled: r(`SELECT disabled FROM users WHERE id = ? AND deleted_at IS NULL`),

		InsertSession: r(`INSERT INTO sessions (` + SessionColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL)`),
		InsertRefreshToken: r(`INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)`),
		SessionByID:        r(`SELECT ` + SessionColumns + ` FROM sessions WHERE id = ?`),
		SessionByRefresh: r(`SELECT ` + SessionColumns + ` FROM sessions
			WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = ?)`),
		ActiveSessions: r(`SELECT ` + SessionColumns + ` FROM sessions
			WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND last_used_at > ?
			ORDER BY last_used_at DESC, id`),
		RevokeSession: r(`UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE id = ? AND revoked_at IS NULL`),
		RevokeUserSessions: r(`UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`),
		RevokedSince: r(`SELECT id, access_until FROM sessions
			WHERE revoked_at IS NOT NULL AND access_until > ? ORDER BY id`),

		InsertEvent: r(`INSERT INTO events (at, kind, user_id, username, session_id, ip, user_agent, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		Events:          r(`SELECT ` + EventColumns + ` FROM events ORDER BY id DESC LIMIT ?`),
		UserEvents:      r(`SELECT ` + EventColumns + ` FROM events WHERE user_id = ? ORDER BY id DESC LIMIT ?`),
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
		DeleteRecoveryCodes: r(`DELETE FROM recovery_codes WHERE user_id = ?`),
		InsertRecoveryCode:  r(`INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`),
		UseRecoveryCode: r(`UPDATE recovery_codes SET used_at = ?
			WHERE user_id = ? AND hash = ? AND used_at IS NULL`),
		RecoveryCodesLeft: r(`SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`),
		InsertChallenge:   r(`INSERT INTO challenges (` + ChallengeColumns + `) VALUES (?, ?, ?, ?, ?, ?)`),
		GetChallenge:      r(`SELECT ` + ChallengeColumns + ` FROM challenges WHERE id = ? AND expires_at > ?`),
		TakeChallenge:     r(`DELETE FROM challenges WHERE id = ? AND expires_at > ? RETURNING ` + ChallengeColumns),

		InsertPasskey: r(`INSERT INTO passkeys (` + PasskeyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		Passkeys:      r(`SELECT ` + PasskeyColumns + ` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`),
		PasskeyByID:   r(`SELECT ` + PasskeyColumns + ` FROM passkeys WHERE id = ?`),
		RemovePasskey: r(`DELETE FROM passkeys WHERE user_id = ? AND id = ?`),
	}
}
