package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/pgtest"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

// TestTwoInstancesRace presents one token through two stores, each with its
// own pool, as two issuer instances on two hosts would: the row lock picks
// exactly one rotation and every other request converges on it.
func TestTwoInstancesRace(t *testing.T) {
	const n = 50
	a, dsn := openTemp(t)
	b := openDSN(t, dsn)
	ctx := t.Context()
	mustUser(t, a, "u", "alice")
	mustSession(t, a, "u", "s", "h0")
	now := base.Add(time.Minute)
	req := store.RotateRequest{PresentedHash: "h0", SuccessorHash: "h1", Now: now, Grace: 30 * time.Second,
		AccessExpiry: now.Add(5 * time.Minute)}

	results := make([]store.RotateResult, n)
	errs := make([]error, n)
	storetest.Barrier(n, func(i int) {
		s := a
		if i%2 == 1 {
			s = b
		}
		results[i], errs[i] = s.RotateRefresh(ctx, req)
	})
	var rotated, converged int
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("rotation %d: %v", i, errs[i])
		}
		switch results[i].Outcome {
		case store.Rotated:
			rotated++
		case store.Converged:
			converged++
		}
	}
	if rotated != 1 || converged != n-1 {
		t.Fatalf("across two instances: rotated %d, converged %d; want 1 and %d", rotated, converged, n-1)
	}

	// A reuse seen by one instance is committed before the other asks.
	late := req
	late.Now = now.Add(time.Minute)
	if _, err := a.RotateRefresh(ctx, late); !errors.Is(err, store.ErrReuse) {
		t.Fatalf("reuse via a: %v, want ErrReuse", err)
	}
	next := store.RotateRequest{PresentedHash: "h1", SuccessorHash: "h2", Now: late.Now, AccessExpiry: late.Now}
	if _, err := b.RotateRefresh(ctx, next); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("current token via b after reuse: %v, want ErrSessionEnded", err)
	}
	if rev, err := b.RevokedSince(ctx, now); err != nil || len(rev) != 1 || rev[0].SID != "s" {
		t.Fatalf("revoked feed via b = %+v, %v; want s", rev, err)
	}
}

// TestDisableRacesSignIn signs in while the account is being disabled, many
// times over: whichever commits first, no session may stay live.
func TestDisableRacesSignIn(t *testing.T) {
	const rounds, signIns = 20, 8
	s, _ := openTemp(t)
	ctx := t.Context()
	for r := range rounds {
		uid := fmt.Sprintf("u%d", r)
		mustUser(t, s, uid, fmt.Sprintf("user%d", r))
		errs := make([]error, signIns+1)
		storetest.Barrier(signIns+1, func(i int) {
			if i == signIns {
				errs[i] = s.SetDisabled(ctx, uid, true, base)
				return
			}
			sid := fmt.Sprintf("%s-s%d", uid, i)
			sess := store.Session{ID: sid, UserID: uid, CreatedAt: base, AuthTime: base,
				ExpiresAt: base.Add(time.Hour), LastUsedAt: base, AccessUntil: base.Add(time.Minute)}
			if err := s.CreateSession(ctx, sess, "h-"+sid); err != nil && !errors.Is(err, store.ErrSessionEnded) {
				errs[i] = err
			}
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		live, err := s.ListSessions(ctx, uid, base.Add(time.Second), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) > 0 {
			t.Fatalf("round %d: %d sessions live after the user was disabled", r, len(live))
		}
	}
}

// TestConnectionLoss cuts the store's connections and then stops the whole
// server: calls fail with store.ErrUnavailable (the issuer answers 503),
// never a panic or another error, and the store recovers by itself.
func TestConnectionLoss(t *testing.T) {
	c := pgtest.Shared(t)
	s, _ := openTemp(t)
	ctx := t.Context()
	mustUser(t, s, "u", "alice")
	mustSession(t, s, "u", "s", "h0")
	mustSession(t, s, "u", "s2", "k0")
	// Fill the pool with several connections.
	storetest.Barrier(8, func(int) { _ = s.Ping(ctx) })

	t.Run("backends terminated", func(t *testing.T) {
		terminate(t, c, dbName(t, s))
		// Reads and transactions notice the dead connections before they
		// could change anything, and go again on fresh ones.
		res, err := s.RotateRefresh(ctx, store.RotateRequest{PresentedHash: "h0", SuccessorHash: "h1",
			Now: base.Add(time.Minute), AccessExpiry: base.Add(2 * time.Minute)})
		if err != nil || res.Outcome != store.Rotated {
			t.Fatalf("RotateRefresh after the backends were terminated: %v, %v", res.Outcome, err)
		}
		terminate(t, c, dbName(t, s))
		if u, err := s.UserByName(ctx, "alice"); err != nil || u.ID != "u" {
			t.Fatalf("UserByName after the backends were terminated: %+v, %v", u, err)
		}
		// A lone write is not retried (it might have run): 503 or success.
		terminate(t, c, dbName(t, s))
		if err := s.AddEvent(ctx, store.Event{Kind: "x"}); err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("AddEvent on a terminated connection: %v, want nil or ErrUnavailable", err)
		}
		if err := s.AddEvent(ctx, store.Event{Kind: "y"}); err != nil {
			t.Fatalf("AddEvent afterwards: %v", err)
		}
	})

	t.Run("server stopped", func(t *testing.T) {
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				_ = c.Start() // for the tests that follow
			}
		})
		now := base.Add(2 * time.Minute)
		for name, call := range map[string]func() error{
			"Ping":         func() error { return s.Ping(ctx) },
			"UserByName":   func() error { _, err := s.UserByName(ctx, "alice"); return err },
			"CreateUser":   func() error { return s.CreateUser(ctx, store.User{ID: "v", Username: "bob", CreatedAt: now}) },
			"SetDisabled":  func() error { return s.SetDisabled(ctx, "u", true, now) },
			"Session":      func() error { _, err := s.Session(ctx, "s"); return err },
			"RevokedSince": func() error { _, err := s.RevokedSince(ctx, now); return err },
			"Sweep":        func() error { _, err := s.Sweep(ctx, now, 10); return err },
			"AddEvent":     func() error { return s.AddEvent(ctx, store.Event{Kind: "x"}) },
			"Secret": func() error {
				_, err := s.Secret(ctx, "k", func() ([]byte, error) { return []byte("v"), nil })
				return err
			},
			"RotateRefresh": func() error {
				_, err := s.RotateRefresh(ctx, store.RotateRequest{PresentedHash: "k0", SuccessorHash: "k1", Now: now, AccessExpiry: now})
				return err
			},
		} {
			start := time.Now()
			err := call()
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s with the server down: %v, want ErrUnavailable", name, err)
			}
			if d := time.Since(start); d > 2*defaultConnectTimeout {
				t.Errorf("%s took %s to fail", name, d)
			}
		}

		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		restarted = true
		res, err := s.RotateRefresh(ctx, store.RotateRequest{PresentedHash: "k0", SuccessorHash: "k1", Now: now, AccessExpiry: now})
		if err != nil || res.Outcome != store.Rotated {
			t.Fatalf("RotateRefresh after the restart: %v, %v", res.Outcome, err)
		}
	})
}

// terminate ends every server process connected to database db and waits
// until they are gone.
func terminate(t *testing.T, c *pgtest.Cluster, db string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(c.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	admin := stdlib.OpenDB(*cfg)
	defer func() { _ = admin.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no connection to terminate: the test would prove nothing")
	}
	for {
		var left int
		if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d connections still there", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
