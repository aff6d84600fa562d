package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// defaultEventLimit is what Events returns when the caller sets no limit.
const defaultEventLimit = 100

// eventRow is an events row as stored; at is Unix microseconds.
type eventRow struct {
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

// AddEvent records an audit event. e.ID is assigned by the database; a zero
// e.At is taken from the store's clock.
func (s *Store) AddEvent(ctx context.Context, e store.Event) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO events (at, kind, user_id, username, session_id, ip, user_agent, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		toDB(e.At), e.Kind, e.UserID, e.Username, e.SessionID, e.IP, e.UserAgent, e.Detail)
	return wrapIf("add event", err)
}

// Events lists the newest events first, by id rather than by time, since
// instances' clocks may disagree; userID "" means every user.
func (s *Store) Events(ctx context.Context, userID string, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = defaultEventLimit
	}
	const cols = `SELECT id, at, kind, user_id, username, session_id, ip, user_agent, detail FROM events`
	var rows []eventRow
	err := s.read(ctx, func() error {
		rows = nil
		if userID == "" {
			return s.db.SelectContext(ctx, &rows, cols+` ORDER BY id DESC LIMIT $1`, limit)
		}
		return s.db.SelectContext(ctx, &rows, cols+` WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, userID, limit)
	})
	if err != nil {
		return nil, wrap("events", err)
	}
	out := make([]store.Event, len(rows))
	for i, r := range rows {
		out[i] = store.Event{
			ID: r.ID, At: fromDB(r.At), Kind: r.Kind, UserID: r.UserID, Username: r.Username,
			SessionID: r.SessionID, IP: r.IP, UserAgent: r.UserAgent, Detail: r.Detail,
		}
	}
	return out, nil
}

// Secret returns the named server secret, creating it with gen when missing.
// Creation inserts with ON CONFLICT DO NOTHING and then reads the row back:
// an insert that meets another instance's uncommitted one waits for it, and
// when that commits, the read (a new snapshot under READ COMMITTED) returns
// its value. So every instance gets the value that committed first, and gen's
// other results are discarded.
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var value []byte
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &value, `SELECT value FROM secrets WHERE name = $1`, name)
	})
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap("secret", err)
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("postgres: secret %q: generate: %w", name, err)
	}
	if len(fresh) == 0 {
		// An empty HMAC key would make every derived token predictable.
		return nil, fmt.Errorf("postgres: secret %q: generator returned an empty value", name)
	}
	err = s.inTx(ctx, "secret", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, name, fresh, toDB(s.now())); err != nil {
			return wrap("secret: insert", err)
		}
		return wrapIf("secret: read back", tx.GetContext(ctx, &value, `SELECT value FROM secrets WHERE name = $1`, name))
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}
