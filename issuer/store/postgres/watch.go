package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canopy-sso/canopy/issuer/store"
)

var _ store.RevocationWatcher = (*Store)(nil)

// Reconnection delays of the LISTEN connection.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 5 * time.Second
)

// WatchRevocations implements store.RevocationWatcher with LISTEN on
// RevocationChannel, on one connection of its own outside the pool: every
// revoking transaction queues a NOTIFY (the dialect's RevocationLock), which
// PostgreSQL delivers to every listener at commit. wake runs after each
// notification and after each (re)connection, because notifications sent
// while the connection was down are lost: the log, not the notification, is
// the source of truth. It returns when ctx ends.
func (s *Store) WatchRevocations(ctx context.Context, wake func()) error {
	delay := watchRetryMin
	for {
		start := time.Now()
		// A failed attempt needs no report: the wake after the next
		// connection re-reads the log, so nothing is lost in the gap.
		_ = s.listen(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > watchRetryMax {
			delay = watchRetryMin // it ran a while: this is a new outage
		}
		// Full jitter, so instances do not reconnect in step.
		wait := rand.N(delay) + time.Millisecond
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(2*delay, watchRetryMax)
	}
}

func (s *Store) listen(ctx context.Context, wake func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.cfg.Copy())
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{RevocationChannel}.Sanitize()); err != nil {
		return err
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		wake()
	}
}
