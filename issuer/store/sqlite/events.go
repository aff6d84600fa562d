package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// AddEvent records an audit event. e.ID is assigned by the database; a zero
// e.At is taken from the store's clock.
func (s *Store) AddEvent(ctx context.Context, e store.Event) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.db.ExecContext(ctx, queries.InsertEvent,
		sqlstore.ToDB(e.At), e.Kind, e.UserID, e.Username, e.SessionID, e.IP, e.UserAgent, e.Detail)
	return wrapIf("add event", err)
}

// Events lists the newest events first, in commit order (by id) rather than by
// time, since instances' clocks may disagree; userID "" means every user.
func (s *Store) Events(ctx context.Context, userID string, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = sqlstore.DefaultEventLimit
	}
	var (
		rows []sqlstore.EventRow
		err  error
	)
	if userID == "" {
		err = s.db.SelectContext(ctx, &rows, queries.Events, limit)
	} else {
		err = s.db.SelectContext(ctx, &rows, queries.UserEvents, userID, limit)
	}
	if err != nil {
		return nil, wrap("events", err)
	}
	return sqlstore.Convert(rows, sqlstore.EventRow.Event), nil
}

// Secret returns the named server secret, creating it with gen when missing.
// Creation inserts with ON CONFLICT DO NOTHING and reads back in the same
// transaction, so when several instances start at once every one of them gets
// the value that committed first, and gen's other results are discarded.
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var value []byte
	err := s.db.GetContext(ctx, &value, queries.Secret, name)
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap("secret", err)
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("sqlite: secret %q: generate: %w", name, err)
	}
	if len(fresh) == 0 {
		// An empty HMAC key would make every derived token predictable.
		return nil, fmt.Errorf("sqlite: secret %q: generator returned an empty value", name)
	}
	err = s.inTx(ctx, "secret", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, queries.InsertSecret, name, fresh, sqlstore.ToDB(s.now())); err != nil {
			return wrap("secret: insert", err)
		}
		return wrapIf("secret: read back", tx.GetContext(ctx, &value, queries.Secret, name))
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}
