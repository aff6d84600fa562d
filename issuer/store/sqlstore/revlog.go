package sqlstore

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// The revocation log's statements, written once with '?' and rebound per
// dialect when run. A session is logged with the access_until it has at
// commit; a user-level entry with the row recordUserRevocation wrote.
const (
	qLogSession = `INSERT INTO revocation_log (sid, until_at, created_at)
		SELECT id, access_until, ? FROM sessions WHERE id = ? AND access_until > ?`
	qLogUser = `INSERT INTO revocation_log (user_id, before_at, except_sid, until_at, created_at)
		VALUES (?, ?, ?, ?, ?)`
	// The sessions a user-level change just revoked (revoked_at is this
	// transaction's time) that its entry does not cover: used in before's
	// own second, or every one when no entry was recorded.
	qLogUserSessions = `INSERT INTO revocation_log (sid, until_at, created_at)
		SELECT id, access_until, ? FROM sessions
		WHERE user_id = ? AND id <> ? AND revoked_at = ? AND access_until > ? AND last_used_at >= ?`
	// The newest row always stays, so the head never goes back.
	qPruneLog = `DELETE FROM revocation_log WHERE until_at < ?
		AND pos < (SELECT MAX(pos) FROM revocation_log)`
	qLogAfter = `SELECT pos, sid, user_id, before_at, except_sid, until_at FROM revocation_log
		WHERE pos > ? ORDER BY pos LIMIT ?`
	qLogHead = `SELECT COALESCE(MAX(pos), 0) FROM revocation_log`
)

// logWindow is how far back a revoked session's last token may have
// expired and still be logged: the feed's ten-minute window.
const logWindow = 10 * time.Minute

// LogRow is a revocation_log row.
type LogRow struct {
	Pos       int64  `db:"pos"`
	SID       string `db:"sid"`
	UserID    string `db:"user_id"`
	BeforeAt  int64  `db:"before_at"`
	ExceptSID string `db:"except_sid"`
	UntilAt   int64  `db:"until_at"`
}

// Logged is the row as a store.LoggedRevocation.
func (r LogRow) Logged() store.LoggedRevocation {
	l := store.LoggedRevocation{Pos: r.Pos, SID: r.SID, UserID: r.UserID, ExceptSID: r.ExceptSID, Until: FromDB(r.UntilAt)}
	if r.UserID != "" {
		l.Before = FromDB(r.BeforeAt)
	}
	return l
}

// lockLog takes the dialect's revocation lock; from here to commit the
// transaction must be short, since every revoking transaction waits on it.
func (s *Store) lockLog(ctx context.Context, tx *sqlx.Tx) error {
	if s.d.RevocationLock == "" {
		return nil
	}
	_, err := s.exec(ctx, tx, "revocation log: lock", s.d.RevocationLock)
	return err
}

// logSession logs the revocation of one session, last in its transaction.
func (s *Store) logSession(ctx context.Context, tx *sqlx.Tx, sid string, now time.Time) error {
	const op = "revocation log"
	if err := s.lockLog(ctx, tx); err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, op, s.rebind(qLogSession), ToDB(now), sid, ToDB(now.Add(-logWindow))); err != nil {
		return err
	}
	return s.pruneLog(ctx, tx, now)
}

// logUser logs a user-level change, last in its transaction, after the
// sessions were marked revoked at now: its entry when recordUserRevocation
// wrote one (entry non-nil), and the sessions the entry does not cover.
func (s *Store) logUser(ctx context.Context, tx *sqlx.Tx, userID, exceptSID string, entry *UserRevocationRow, now time.Time) error {
	const op = "revocation log"
	if err := s.lockLog(ctx, tx); err != nil {
		return err
	}
	usedFrom := int64(-1 << 62) // no entry: every session revoked here
	if entry != nil {
		if _, err := s.exec(ctx, tx, op, s.rebind(qLogUser), userID, entry.BeforeAt, exceptSID, entry.UntilAt, ToDB(now)); err != nil {
			return err
		}
		usedFrom = entry.BeforeAt
	}
	if _, err := s.exec(ctx, tx, op, s.rebind(qLogUserSessions), ToDB(now), userID, exceptSID, ToDB(now),
		ToDB(now.Add(-logWindow)), usedFrom); err != nil {
		return err
	}
	return s.pruneLog(ctx, tx, now)
}

func (s *Store) pruneLog(ctx context.Context, tx *sqlx.Tx, now time.Time) error {
	_, err := s.exec(ctx, tx, "revocation log: prune", s.rebind(qPruneLog), ToDB(now.Add(-userRevocationKeep)))
	return err
}

// RevocationsAfter implements store.RevocationLog: one range read of the
// primary key, so a read with nothing new costs the same however long the log.
func (s *Store) RevocationsAfter(ctx context.Context, after int64, limit int) ([]store.LoggedRevocation, error) {
	if limit <= 0 {
		return []store.LoggedRevocation{}, nil
	}
	rows, err := list[LogRow](ctx, s, "revocations after", s.rebind(qLogAfter), after, limit)
	return Convert(rows, LogRow.Logged), err
}

// RevocationHead implements store.RevocationLog.
func (s *Store) RevocationHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.read(ctx, func() error { return s.db.GetContext(ctx, &head, s.rebind(qLogHead)) })
	return head, s.d.wrapIf("revocation head", err)
}
