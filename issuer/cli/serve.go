package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/internal/tracing"
	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/server"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/postgres"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
	"github.com/canopy-sso/canopy/issuer/throttle"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/metricsrv"
	"github.com/canopy-sso/canopy/pkg/username"
)

// env is what every command opens: the validated config, the store, the keys.
type env struct {
	store store.Store
	keys  *keys.Dir
	names *username.Rules
}

func (e *env) Close() {
	if e.store != nil {
		_ = e.store.Close()
	}
}

// open validates the configuration and opens the store and the key directory,
// reporting every problem at once. create makes the key directory and first
// keys when missing (serve), otherwise a missing directory is an error.
func (inv *invocation) open(ctx context.Context, create bool) (*env, error) {
	var problems []string
	if err := inv.cfg.Validate(); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), "invalid configuration:\n  - "))
	}
	e := &env{}
	var err error
	if e.names, err = usernameRules(&inv.cfg); err != nil {
		problems = append(problems, fmt.Sprintf("--reserved-names: %v", err))
	}
	kopts := keyOptions(&inv.cfg)
	if e.keys, err = keys.Open(inv.cfg.Keys, kopts); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
	}
	if create {
		// Ensure also records --access-ttl and --jwks-max-age in the key
		// directory, so that `issuer keys rotate` waits and keeps keys as
		// long as the serving instances need.
		if err := e.keys.Ensure(); err != nil {
			return nil, err
		}
	}
	if e.store, err = openStoreWith(inv.cfg.DB, inv.sqliteOptions()); err != nil {
		return nil, err
	}
	return e, nil
}

// usernameRules are the names no new user may take: the built-in list, the
// --reserved-names file and the issuer's own host label under the cookie
// domain (the issuer on idp.domain.com makes idp.domain.com no user's page).
// cfg must have been validated.
func usernameRules(cfg *config.Config) (*username.Rules, error) {
	names, err := username.LoadRules(cfg.ReservedNames)
	if err != nil {
		return nil, err
	}
	if label := cfg.HostLabel(); username.ValidLabel(label) {
		return names.With(label)
	}
	return names, nil
}

// openStore opens the store --db names: PostgreSQL for a postgres:// or
// postgresql:// URL, else a SQLite file.
// Opening PostgreSQL migrates its schema, bounded by postgres.Open's own timeout.
func openStore(dsn string) (store.Store, error) {
	return openStoreWith(dsn, sqlite.Options{})
}

// sqliteOptions are the SQLite store's options from the configuration;
// serve adds its metrics as the group writer's observer.
func (inv *invocation) sqliteOptions() sqlite.Options {
	opts := sqlite.Options{CommitEach: inv.cfg.SQLiteCommit == "each"}
	if inv.metrics != nil {
		opts.Group.Observer = inv.metrics
	}
	return opts
}

// openStoreWith is openStore with the SQLite store's options.
func openStoreWith(dsn string, opts sqlite.Options) (store.Store, error) {
	if isPostgresURL(dsn) {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("--db %s: %w", postgres.Redact(dsn), err)
		}
		return s, nil
	}
	s, err := sqlite.Open(dsn, opts)
	if err != nil {
		return nil, fmt.Errorf("--db %s: %w", dsn, err)
	}
	return s, nil
}

// redactDB is --db as it may be logged: without a PostgreSQL password.
func redactDB(dsn string) string {
	if isPostgresURL(dsn) {
		return postgres.Redact(dsn)
	}
	return dsn
}

// isPostgresURL reports whether --db selects PostgreSQL.
func isPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// hashConcurrency bounds simultaneous argon2id hashes: each holds 19 MiB.
const hashConcurrency = 4

func (inv *invocation) serve(ctx context.Context) error {
	// The providers' client secrets are read once, at start; their errors
	// name the file, never its content.
	if err := inv.cfg.LoadSecrets(); err != nil {
		return err
	}
	m := metrics.NewIssuer()
	inv.metrics = m
	e, err := inv.open(ctx, true)
	if err != nil {
		return err
	}
	defer e.Close()
	if q, ok := e.store.(interface{ QueueDepth() int }); ok {
		m.WatchQueue(q.QueueDepth)
	}
	hasher, err := password.NewHasher(password.OWASP, hashConcurrency)
	if err != nil {
		return err
	}
	tc := throttle.DefaultConfig()
	if shared, ok := e.store.(throttle.Shared); ok && isPostgresURL(inv.cfg.DB) {
		// Several instances may share a PostgreSQL database: their login
		// failure counts are pooled there, so N instances do not allow N
		// times the guesses.
		tc.Shared = shared
		tc.OnSharedError = func(err error) {
			inv.log.Warn("shared login throttle unavailable; this instance's counts decide alone", "err", err)
		}
	}
	srv, err := server.New(ctx, server.Deps{
		Config: inv.cfg, Store: e.store, Keys: e.keys, Hasher: hasher,
		Throttle: throttle.New(tc), Names: e.names, Log: inv.log, Metrics: m,
		StreamHeartbeat: inv.cfg.StreamHeartbeat,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", inv.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if inv.cfg.MetricsListen != "" {
		addr, err := metricsrv.Serve(ctx, inv.cfg.MetricsListen, m.Registry)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		inv.log.Info("metrics listening", "addr", addr.String(), "path", "/metrics")
	}
	// Keys changed by `issuer keys rotate|revoke` or another instance are picked up without a restart.
	go e.keys.Watch(ctx, 2*time.Second)
	go sweepLoop(ctx, e.store, inv.log, 10*time.Minute, inv.cfg.EventRetention)
	// The exporter reads the OTEL_* variables of the process itself.
	tp, err := tracing.Setup(ctx, "canopy-issuer", os.LookupEnv)
	if err != nil {
		return err
	}
	if tp != nil {
		inv.log.Info("tracing on: exporting OTLP spans of sign-in and refresh")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tp.Shutdown(sctx)
		}()
	}
	defer srv.Close()
	hs := &http.Server{
		Handler: tp.Handler(traceName, srv.Handler()), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
	}
	// Open revocation streams end when shutdown starts; their clients
	// resume on another instance (or this one, restarted) from their cursor.
	hs.RegisterOnShutdown(srv.Close)
	inv.log.Info("issuer listening", "addr", ln.Addr().String(), "url", inv.cfg.URL,
		"cookie_domain", inv.cfg.CookieDomain, "other_urls", strings.Join(inv.cfg.OtherURLs, ","), "db", redactDB(inv.cfg.DB), "keys", inv.cfg.Keys)
	errc := make(chan error, 1)
	go func() {
		if inv.cfg.TLSCert != "" {
			errc <- hs.ServeTLS(ln, inv.cfg.TLSCert, inv.cfg.TLSKey)
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	inv.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// sweepBatch bounds one Sweep call, so a large backlog never holds the
// database for long; sweepKeep keeps ended sessions an hour, well past the
// revocation feed's ten-minute window.
const (
	sweepBatch = 1000
	sweepKeep  = time.Hour
)

// sweepLoop deletes ended sessions (with their refresh-token records),
// expired shared login throttle counts and,
// when retention is positive, audit events older than retention, now and
// then every interval, until ctx ends.
func sweepLoop(ctx context.Context, s store.Store, log *slog.Logger, interval, retention time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := time.Now()
		if n, err := drain(ctx, s.Sweep, now.Add(-sweepKeep)); err != nil {
			log.Warn("sweep of ended sessions failed; retrying later", "deleted", n, "err", err)
		} else if n > 0 {
			log.Info("swept ended sessions", "deleted", n)
		}
		if ts, ok := s.(interface {
			SweepThrottle(context.Context, time.Time, int) (int, error)
		}); ok {
			if n, err := drain(ctx, ts.SweepThrottle, now); err != nil {
				log.Warn("sweep of expired login throttle counts failed; retrying later", "deleted", n, "err", err)
			}
		}
		if retention > 0 {
			if n, err := drain(ctx, s.SweepEvents, now.Add(-retention)); err != nil {
				log.Warn("sweep of old audit events failed; retrying later", "deleted", n, "err", err)
			} else if n > 0 {
				log.Info("swept old audit events", "deleted", n, "retention", retention.String())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepOnce deletes, in batches, every session that ended before `before`.
func sweepOnce(ctx context.Context, s store.Store, before time.Time) (int, error) {
	return drain(ctx, s.Sweep, before)
}

// drain calls one bounded delete until it deletes less than a full batch.
func drain(ctx context.Context, sweep func(context.Context, time.Time, int) (int, error), before time.Time) (int, error) {
	total := 0
	for {
		n, err := sweep(ctx, before, sweepBatch)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// traceName names the issuer requests that get a span: sign-in (each step)
// and refresh. Others, health checks above all, get none.
func traceName(r *http.Request) string {
	switch p := r.URL.Path; {
	case r.Method == http.MethodPost && (p == "/login" || p == "/login/otp" || p == "/webauthn/login/finish"):
		return "issuer.sign_in"
	case p == "/refresh" && r.Method != http.MethodOptions:
		return "issuer.refresh"
	}
	return ""
}
