package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// This file holds OpenID Back-Channel Logout's grants (which clients
// received a token in which session) and the durable outbox of logout
// tokens to deliver (store.LogoutOutbox).

const (
	qLiveSession = `SELECT 1 FROM sessions WHERE id = ? AND revoked_at IS NULL AND expires_at > ?`
	qInsertGrant = `INSERT INTO oidc_grants (session_id, client_id, user_id, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`
	// A session's grants of clients with a back-channel URI become outbox
	// rows; one row per client and session, whatever else ended it first.
	qEnqueueSession = `INSERT INTO oidc_logout_outbox (client_id, session_id, user_id, reason, created_at, next_at, attempts)
		SELECT g.client_id, g.session_id, g.user_id, ?, ?, ?, 0
		FROM oidc_grants g JOIN oidc_clients c ON c.id = g.client_id
		WHERE g.session_id = ? AND c.backchannel_logout_uri <> ''
		ON CONFLICT DO NOTHING`
	qDeleteSessionGrants = `DELETE FROM oidc_grants WHERE session_id = ?`
	// After a user-level change: the grants of the user's sessions that are
	// revoked now (those revoked before lost their grants then).
	qEnqueueUser = `INSERT INTO oidc_logout_outbox (client_id, session_id, user_id, reason, created_at, next_at, attempts)
		SELECT g.client_id, g.session_id, g.user_id, ?, ?, ?, 0
		FROM oidc_grants g JOIN oidc_clients c ON c.id = g.client_id
		WHERE g.user_id = ? AND g.session_id <> ? AND c.backchannel_logout_uri <> ''
		AND g.session_id IN (SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NOT NULL)
		ON CONFLICT DO NOTHING`
	qDeleteUserGrants = `DELETE FROM oidc_grants WHERE user_id = ? AND session_id <> ?
		AND session_id IN (SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NOT NULL)`
	// Sessions with grants that ended without a revocation: past their
	// absolute end, idle, or swept away.
	qEndedGrantSessions = `SELECT DISTINCT g.session_id FROM oidc_grants g LEFT JOIN sessions s ON s.id = g.session_id
		WHERE s.id IS NULL OR s.revoked_at IS NOT NULL OR s.expires_at <= ? OR s.last_used_at <= ?
		ORDER BY g.session_id LIMIT ?`

	outboxColumns = `o.client_id, o.session_id, o.user_id, o.reason, o.created_at, o.next_at, o.attempts,
		c.backchannel_logout_uri, c.id_token_alg`
	qDueLogouts = `SELECT ` + outboxColumns + ` FROM oidc_logout_outbox o JOIN oidc_clients c ON c.id = o.client_id
		WHERE o.next_at <= ? ORDER BY o.next_at, o.client_id, o.session_id LIMIT ?`
	qClaimLogout = `UPDATE oidc_logout_outbox SET attempts = attempts + 1, next_at = ?
		WHERE client_id = ? AND session_id = ? AND attempts = ?`
	qDeleteLogout = `DELETE FROM oidc_logout_outbox WHERE client_id = ? AND session_id = ?`
	qOldLogouts   = `SELECT ` + outboxColumns + ` FROM oidc_logout_outbox o JOIN oidc_clients c ON c.id = o.client_id
		WHERE o.created_at < ?`
	qCrowdedClients = `SELECT client_id FROM oidc_logout_outbox GROUP BY client_id HAVING COUNT(*) > ? ORDER BY client_id`
	// The perClient-th newest row of a client: those older than it go.
	qClientCutoff = `SELECT created_at, session_id FROM oidc_logout_outbox WHERE client_id = ?
		ORDER BY created_at DESC, session_id DESC LIMIT 1 OFFSET ?`
	qBeyondCutoff = `SELECT ` + outboxColumns + ` FROM oidc_logout_outbox o JOIN oidc_clients c ON c.id = o.client_id
		WHERE o.client_id = ? AND (o.created_at < ? OR (o.created_at = ? AND o.session_id < ?))`
	qRemoveClientGrants = `DELETE FROM oidc_grants WHERE client_id = ?`
	qRemoveClientOutbox = `DELETE FROM oidc_logout_outbox WHERE client_id = ?`
)

// OutboxRow is an oidc_logout_outbox row with its client's URI and algorithm.
type OutboxRow struct {
	ClientID   string `db:"client_id"`
	SessionID  string `db:"session_id"`
	UserID     string `db:"user_id"`
	Reason     string `db:"reason"`
	CreatedAt  int64  `db:"created_at"`
	NextAt     int64  `db:"next_at"`
	Attempts   int    `db:"attempts"`
	URI        string `db:"backchannel_logout_uri"`
	IDTokenAlg string `db:"id_token_alg"`
}

// Pending is the row as a store.PendingLogout.
func (r OutboxRow) Pending() store.PendingLogout {
	return store.PendingLogout{ClientID: r.ClientID, SessionID: r.SessionID, UserID: r.UserID, Reason: r.Reason,
		CreatedAt: FromDB(r.CreatedAt), NextAt: FromDB(r.NextAt), Attempts: r.Attempts, URI: r.URI, IDTokenAlg: r.IDTokenAlg}
}

// recordGrant notes, in the transaction that stores a client token, that
// the client received a token in the session. The session is read under a
// share lock where rows are locked, so a revocation racing with it either
// waits and then finds the grant, or commits first and the token is
// refused (store.ErrSessionEnded): no client is left out of the logout.
func (s *Store) recordGrant(ctx context.Context, tx *sqlx.Tx, t store.ClientToken) error {
	const op = "record grant"
	var one int
	err := s.getTx(ctx, tx, op, fmt.Sprintf("session %q", t.SessionID), &one,
		s.rebind(qLiveSession+s.d.LockShare), t.SessionID, ToDB(t.CreatedAt))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return s.d.errorf("%s: session %q: %w", op, t.SessionID, store.ErrSessionEnded)
		}
		return err
	}
	_, err = s.exec(ctx, tx, op, s.rebind(qInsertGrant), t.SessionID, t.ClientID, t.UserID, ToDB(t.CreatedAt))
	return err
}

// enqueueSession turns the grants of a session that ends in tx into
// outbox rows and deletes them.
func (s *Store) enqueueSession(ctx context.Context, tx *sqlx.Tx, sid, reason string, now time.Time) error {
	const op = "back-channel logout: enqueue"
	t := ToDB(now)
	if _, err := s.exec(ctx, tx, op, s.rebind(qEnqueueSession), reason, t, t, sid); err != nil {
		return err
	}
	_, err := s.exec(ctx, tx, op, s.rebind(qDeleteSessionGrants), sid)
	return err
}

// enqueueUser does enqueueSession for every session of the user that a
// user-level change revoked in tx (all but exceptSID).
func (s *Store) enqueueUser(ctx context.Context, tx *sqlx.Tx, userID, exceptSID, reason string, now time.Time) error {
	const op = "back-channel logout: enqueue"
	t := ToDB(now)
	if _, err := s.exec(ctx, tx, op, s.rebind(qEnqueueUser), reason, t, t, userID, exceptSID, userID); err != nil {
		return err
	}
	_, err := s.exec(ctx, tx, op, s.rebind(qDeleteUserGrants), userID, exceptSID, userID)
	return err
}

// DueLogouts implements store.LogoutOutbox.
func (s *Store) DueLogouts(ctx context.Context, now time.Time, limit int) ([]store.PendingLogout, error) {
	if limit <= 0 {
		return []store.PendingLogout{}, nil
	}
	rows, err := list[OutboxRow](ctx, s, "due logouts", s.rebind(qDueLogouts), ToDB(now), limit)
	return Convert(rows, OutboxRow.Pending), err
}

// ClaimLogout implements store.LogoutOutbox: one conditional UPDATE, so of
// concurrent claims of the same attempt exactly one changes the row.
func (s *Store) ClaimLogout(ctx context.Context, p store.PendingLogout, retryAt time.Time) (bool, error) {
	var n int64
	err := s.inTx(ctx, "claim logout", func(tx *sqlx.Tx) error {
		var err error
		n, err = s.exec(ctx, tx, "claim logout", s.rebind(qClaimLogout), ToDB(retryAt), p.ClientID, p.SessionID, p.Attempts)
		return err
	})
	return n == 1, err
}

// DeleteLogout implements store.LogoutOutbox.
func (s *Store) DeleteLogout(ctx context.Context, clientID, sessionID string) error {
	return s.inTx(ctx, "delete logout", func(tx *sqlx.Tx) error {
		_, err := s.exec(ctx, tx, "delete logout", s.rebind(qDeleteLogout), clientID, sessionID)
		return err
	})
}

// ExpireGrants implements store.LogoutOutbox.
func (s *Store) ExpireGrants(ctx context.Context, now time.Time, idle time.Duration, limit int) (int, error) {
	const op = "expire grants"
	if limit <= 0 {
		return 0, nil
	}
	usedBefore := int64(math.MinInt64)
	if idle > 0 {
		usedBefore = ToDB(now.Add(-idle))
	}
	var n int
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		var sids []string
		if err := tx.SelectContext(ctx, &sids, s.rebind(qEndedGrantSessions), ToDB(now), usedBefore, limit); err != nil {
			return s.d.Wrap(op, err)
		}
		n = len(sids)
		for _, sid := range sids {
			if err := s.enqueueSession(ctx, tx, sid, store.ReasonExpired, now); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// PruneLogouts implements store.LogoutOutbox.
func (s *Store) PruneLogouts(ctx context.Context, olderThan time.Time, perClient int) ([]store.PendingLogout, error) {
	const op = "prune logouts"
	var dropped []store.PendingLogout
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		dropped = nil
		var rows []OutboxRow
		if err := tx.SelectContext(ctx, &rows, s.rebind(qOldLogouts), ToDB(olderThan)); err != nil {
			return s.d.Wrap(op, err)
		}
		if perClient > 0 {
			var crowded []string
			if err := tx.SelectContext(ctx, &crowded, s.rebind(qCrowdedClients), perClient); err != nil {
				return s.d.Wrap(op, err)
			}
			for _, id := range crowded {
				var cut struct {
					CreatedAt int64  `db:"created_at"`
					SessionID string `db:"session_id"`
				}
				if err := tx.GetContext(ctx, &cut, s.rebind(qClientCutoff), id, perClient-1); err != nil {
					return s.d.Wrap(op, err)
				}
				var more []OutboxRow
				if err := tx.SelectContext(ctx, &more, s.rebind(qBeyondCutoff), id, cut.CreatedAt, cut.CreatedAt, cut.SessionID); err != nil {
					return s.d.Wrap(op, err)
				}
				rows = append(rows, more...)
			}
		}
		seen := map[[2]string]bool{}
		for _, r := range rows {
			k := [2]string{r.ClientID, r.SessionID}
			if seen[k] {
				continue
			}
			seen[k] = true
			if _, err := s.exec(ctx, tx, op, s.rebind(qDeleteLogout), r.ClientID, r.SessionID); err != nil {
				return err
			}
			dropped = append(dropped, r.Pending())
		}
		return nil
	})
	return dropped, err
}

var _ store.LogoutOutbox = (*Store)(nil)
