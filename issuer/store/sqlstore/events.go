package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// AddEvent records an audit event. e.ID is assigned by the database; a zero
// e.At is taken from the store's clock. Its free-text fields are cleaned
// (cleanText).
func (s *Store) AddEvent(ctx context.Context, e store.Event) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.exec(ctx, s.db, "add event", s.q.InsertEvent,
		ToDB(e.At), e.Kind, e.UserID, cleanText(e.Username), e.SessionID, cleanText(e.IP), cleanText(e.UserAgent), cleanText(e.Detail))
	return err
}

// Events lists the newest events first, in commit order (by id) rather than
// by time, since instances' clocks may disagree; userID "" means every user.
func (s *Store) Events(ctx context.Context, userID string, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	query, args := s.q.Events, []any{limit}
	if userID != "" {
		query, args = s.q.UserEvents, []any{userID, limit}
	}
	rows, err := list[EventRow](ctx, s, "events", query, args...)
	return Convert(rows, EventRow.Event), err
}

// SweepEvents deletes events recorded before `before`, looking at no more
// than the limit oldest events (by id, which is commit order), so one call is
// one short statement however large the table is; it returns how many it
// deleted. A caller repeats it while it deletes a full batch.
func (s *Store) SweepEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := s.exec(ctx, s.db, "sweep events", s.q.SweepEvents, limit, ToDB(before))
	return int(n), err
}

// Secret returns the named server secret, creating it with gen when missing.
// Creation inserts with ON CONFLICT DO NOTHING and then reads the row back in
// the same transaction: an insert that meets another instance's uncommitted
// one waits for it (or for the database's write lock), and the read then
// returns the committed value. So every instance gets the value that
// committed first, and gen's other results are discarded.
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var value []byte
	err := s.get(ctx, "secret", fmt.Sprintf("%q", name), &value, s.q.Secret, name)
	if !errors.Is(err, store.ErrNotFound) {
		return value, err
	}
	fresh, err := gen()
	if err != nil {
		return nil, s.d.errorf("secret %q: generate: %w", name, err)
	}
	if len(fresh) == 0 {
		// An empty HMAC key would make every derived token predictable.
		return nil, s.d.errorf("secret %q: generator returned an empty value", name)
	}
	err = s.inTx(ctx, "secret", func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, "secret: insert", s.q.InsertSecret, name, fresh, ToDB(s.now())); err != nil {
			return err
		}
		return s.d.wrapIf("secret: read back", tx.GetContext(ctx, &value, s.q.Secret, name))
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}
