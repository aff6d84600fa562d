package sqlstore

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/throttle"
)

var _ throttle.Shared = (*Store)(nil)

// ThrottleCounts returns the failure counts several instances share for
// keys, in their order: a zero throttle.Count for a key without a row or
// whose row expired before now. One read; nothing is written.
func (s *Store) ThrottleCounts(ctx context.Context, keys []string, now time.Time) ([]throttle.Count, error) {
	out := make([]throttle.Count, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT key, failures, last_at FROM throttle_counts WHERE key IN (?) AND expires_at >= ?`, keys, ToDB(now))
	if err != nil {
		return nil, s.d.Wrap("throttle counts", err)
	}
	type row struct {
		Key      string `db:"key"`
		Failures int    `db:"failures"`
		LastAt   int64  `db:"last_at"`
	}
	rows, err := list[row](ctx, s, "throttle counts", sqlx.Rebind(s.d.BindType, q), args...)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		for i, k := range keys {
			if k == r.Key {
				out[i] = throttle.Count{Failures: r.Failures, Last: FromDB(r.LastAt)}
			}
		}
	}
	return out, nil
}

// ThrottleFailure adds one failure to key's shared count and returns the
// count after it; a count whose window ended before now starts again at 1.
// The row expires window after now. One statement, atomic in either
// database, so instances failing at once each add theirs.
func (s *Store) ThrottleFailure(ctx context.Context, key string, now time.Time, window time.Duration) (throttle.Count, error) {
	t, exp := ToDB(now), ToDB(now.Add(window))
	var failures int
	err := s.db.GetContext(ctx, &failures, sqlx.Rebind(s.d.BindType, `INSERT INTO throttle_counts (key, failures, last_at, expires_at)
		VALUES (?, 1, ?, ?)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN throttle_counts.expires_at < excluded.last_at THEN 1 ELSE throttle_counts.failures + 1 END,
			last_at = excluded.last_at, expires_at = excluded.expires_at
		RETURNING failures`), key, t, exp)
	if err != nil {
		return throttle.Count{}, s.d.Wrap("throttle failure", err)
	}
	return throttle.Count{Failures: failures, Last: Trunc(now)}, nil
}

// ThrottleForget deletes the shared counts of keys (a successful sign-in).
func (s *Store) ThrottleForget(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	q, args, err := sqlx.In(`DELETE FROM throttle_counts WHERE key IN (?)`, keys)
	if err != nil {
		return s.d.Wrap("throttle forget", err)
	}
	_, err = s.exec(ctx, s.db, "throttle forget", sqlx.Rebind(s.d.BindType, q), args...)
	return err
}

// SweepThrottle deletes at most limit shared counts that expired before
// now and returns how many it deleted.
func (s *Store) SweepThrottle(ctx context.Context, now time.Time, limit int) (int, error) {
	n, err := s.exec(ctx, s.db, "sweep throttle", sqlx.Rebind(s.d.BindType,
		`DELETE FROM throttle_counts WHERE key IN (SELECT key FROM throttle_counts WHERE expires_at < ? LIMIT ?)`), ToDB(now), limit)
	return int(n), err
}
