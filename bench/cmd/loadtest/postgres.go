package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the driver the issuer uses

	"github.com/canopy-sso/canopy/issuer/store/pgtest"
	"github.com/canopy-sso/canopy/issuer/store/postgres"
)

// runPostgres loads POST /refresh on PostgreSQL: a throwaway cluster
// (issuer/store/pgtest) seeded with o.sessions sessions, and two issuer
// processes on it, in alternating rounds of all clients on one instance
// and the clients split over both, so both rates come from one run.
// PostgreSQL keeps one transaction and row lock per rotation.
func runPostgres(ctx context.Context, o options, rep *report, dir, issuerBin, issuerURL, refreshCookie string) error {
	cluster, err := pgtest.StartCluster()
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer func() { _ = cluster.Close() }()
	_, dsn, err := cluster.CreateDatabase(ctx)
	if err != nil {
		return err
	}
	logf("postgres: seeding %d sessions…", o.sessions)
	t0 := time.Now()
	tokens, err := seedPostgres(ctx, dsn, o.sessions, o.refreshConc)
	if err != nil {
		return fmt.Errorf("postgres seed: %w", err)
	}
	rep.PGSeedSeconds = time.Since(t0).Seconds()
	logf("postgres: seeded in %v", time.Since(t0).Round(time.Millisecond))

	var addrs [2]string
	for i := range addrs {
		port, err := freePort()
		if err != nil {
			return err
		}
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", port)
		iss, err := startProc(ctx, dir, issuerBin, nil, "serve", "--listen", addrs[i], "--access-ttl", "30m",
			"--db", dsn, "--keys", filepath.Join(dir, "keys"), "--url", issuerURL)
		if err != nil {
			return err
		}
		defer iss.stop()
		if err := waitReady(ctx, "http://"+addrs[i]+"/healthz", iss); err != nil {
			return err
		}
	}
	chains := append([]string(nil), tokens...)
	c := loadClient(o.refreshConc)
	rotate := func(instances int) func(int) error {
		return func(w int) error {
			return refreshOnce(ctx, c, "http://"+addrs[w%instances]+"/refresh", refreshCookie, chains, w)
		}
	}
	names := [2]string{
		fmt.Sprintf("POST /refresh, PostgreSQL %s, 1 instance", count(o.sessions)),
		fmt.Sprintf("POST /refresh, PostgreSQL %s, 2 instances", count(o.sessions)),
	}
	total := [2]stats{{Name: names[0], Conc: o.refreshConc}, {Name: names[1], Conc: o.refreshConc}}
	const rounds = 4
	per := max(time.Second, 2*o.duration/rounds)
	var ratios []float64
	for r := range rounds {
		var got [2]stats
		for i := range 2 {
			k := (i + r) % 2
			logf("postgres round %d/%d: %d instance(s), %v at %d clients", r+1, rounds, k+1, per, o.refreshConc)
			got[k] = hammer(ctx, names[k], o.refreshConc, per, rotate(k+1))
			total[k].merge(got[k])
		}
		if got[0].PerSec > 0 {
			ratios = append(ratios, got[1].PerSec/got[0].PerSec)
		}
	}
	rep.Scenarios = append(rep.Scenarios, total[0], total[1])
	if len(ratios) > 0 {
		slices.Sort(ratios)
		rep.PGTwoOverOne = (ratios[(len(ratios)-1)/2] + ratios[len(ratios)/2]) / 2
	}
	return nil
}

// seedPostgres brings the schema up (postgres.Open migrates) and writes n
// sessions over n/100 users in a few set statements; it returns the
// refresh tokens ("lt-<i>", stored as their SHA-256 in hex, as the issuer
// stores cookie values) of keep sessions spread over the table.
func seedPostgres(ctx context.Context, dsn string, n, keep int) ([]string, error) {
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	now := time.Now()
	created, expires, access := now.UnixMicro(), now.Add(720*time.Hour).UnixMicro(), now.Add(5*time.Minute).UnixMicro()
	users := max(1, n/100)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SET LOCAL synchronous_commit = off`, nil},
		{`INSERT INTO users (id, username, created_at) SELECT 'u' || i, 'seed' || i, $1 FROM generate_series(0, $2 - 1) AS i`,
			[]any{created, users}},
		{`INSERT INTO sessions (id, user_id, created_at, auth_time, expires_at, last_used_at, access_until, user_agent, ip, current_hash)
			SELECT 's' || lpad(i::text, 8, '0'), 'u' || (i % $4), $1, $1, $2, $1, $3, 'loadtest', '127.0.0.1',
				encode(sha256(convert_to('lt-' || i, 'UTF8')), 'hex')
			FROM generate_series(0, $5 - 1) AS i`, []any{created, expires, access, users, n}},
		{`INSERT INTO refresh_tokens (hash, session_id, created_at) SELECT current_hash, id, created_at FROM sessions`, nil},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		return nil, err
	}
	step := max(1, n/max(1, keep))
	var kept []string
	for i := 0; i < n && len(kept) < keep; i += step {
		kept = append(kept, fmt.Sprintf("lt-%d", i))
	}
	return kept, nil
}
