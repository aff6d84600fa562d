package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/username"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// events lists the audit trail, newest first: `issuer events [USERNAME]`.
func (inv *invocation) events(ctx context.Context) error {
	if len(inv.args) > 1 {
		return usagef("events takes at most one USERNAME")
	}
	e, err := inv.open(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	userID := ""
	if len(inv.args) == 1 {
		name, err := username.Lookup(inv.args[0]) // reserved names too: a user may have had it first
		if err != nil {
			return usagef("username %q %v", inv.args[0], err)
		}
		u, err := e.store.UserByName(ctx, name)
		if err != nil {
			return fmt.Errorf("no user %s", name)
		}
		userID = u.ID
	}
	list, err := e.store.Events(ctx, userID, 200)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(inv.io.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tUSER\tIP\tDETAIL")
	// Every field is escaped: a username typed at the login form reaches the
	// detail as typed, and a newline or an escape sequence in it must not
	// forge a line or reach the administrator's terminal.
	field := func(v string) string {
		if v == "" {
			return "-"
		}
		return store.Printable(v)
	}
	for _, ev := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.At.UTC().Format(time.RFC3339), field(ev.Kind), field(ev.Username),
			field(ev.IP), store.Printable(ev.Detail))
	}
	return tw.Flush()
}

// backup takes a consistent online copy of the SQLite database: `issuer backup FILE`.
func (inv *invocation) backup(ctx context.Context) error {
	if len(inv.args) != 1 {
		return usagef("backup takes one FILE")
	}
	if strings.Contains(inv.cfg.DB, "://") {
		return errors.New("backup copies a SQLite database; for PostgreSQL use pg_dump")
	}
	s, err := sqlite.Open(inv.cfg.DB, sqlite.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Backup(ctx, inv.args[0]); err != nil {
		return err
	}
	fmt.Fprintf(inv.io.Stdout, "backed up %s to %s\nto restore: stop the issuer, replace %s with the copy (and delete %s-wal and %s-shm), start it again\n",
		inv.cfg.DB, inv.args[0], inv.cfg.DB, inv.cfg.DB, inv.cfg.DB)
	return nil
}

// reservedOwners warns about users who own a name no new user could take:
// the issuer's own host label (their page would be the issuer's host) or a
// reserved name. They keep it (a reservation stops new names only), but the
// operator should know, and may rename the issuer or disable the user.
func reservedOwners(ctx context.Context, cfg *config.Config, db store.Store) check {
	c := check{name: "no user owns the issuer's host label or a reserved name", warn: true,
		fix: "such a user keeps the name; disable or delete them (issuer user disable NAME) if it must not be theirs"}
	names, err := usernameRules(cfg)
	if err != nil {
		c.err, c.warn = fmt.Errorf("--reserved-names: %w", err), false
		c.fix = "correct the --reserved-names file"
		return c
	}
	users, err := db.ListUsers(ctx)
	if err != nil {
		c.err, c.warn = err, false
		return c
	}
	label := cfg.HostLabel()
	var owners []string
	for _, u := range users {
		switch {
		case u.Username == label:
			owners = append(owners, fmt.Sprintf("%s owns %s://%s.%s, the issuer's own host", u.Username, cfg.Scheme(), u.Username, cfg.CookieDomain))
		case names.IsReserved(u.Username):
			owners = append(owners, u.Username+" owns a reserved name")
		}
	}
	if len(owners) > 0 {
		c.err = errors.New(strings.Join(owners, "\n"))
	}
	return c
}

// check is one line of `issuer doctor`.
type check struct {
	name string
	err  error
	fix  string
	warn bool // reported, but not a failure
}

// doctor checks a configuration before deployment and prints each check.
func (inv *invocation) doctor(ctx context.Context) error {
	var checks []check
	add := func(name string, err error, fix string) {
		checks = append(checks, check{name: name, err: err, fix: fix})
	}

	cfg := inv.cfg
	verr := cfg.Validate()
	add("configuration (URL scheme, cookie domain, durations)", verr, "correct the flags listed")
	if verr == nil {
		host := strings.TrimPrefix(strings.TrimPrefix(cfg.URL, "https://"), "http://")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		add(fmt.Sprintf("issuer host %s is under cookie domain %s", host, cfg.CookieDomain), nil, "")
		suffix, icann := publicsuffix.PublicSuffix(cfg.CookieDomain)
		var err error
		if suffix == cfg.CookieDomain {
			err = fmt.Errorf("%s is a public suffix", cfg.CookieDomain)
		}
		_ = icann
		add(fmt.Sprintf("cookie domain %s is not a public suffix (its suffix is %s)", cfg.CookieDomain, suffix), err,
			"use a domain you own, such as example.com, as --cookie-domain")
		add(fmt.Sprintf("user pages will be %s://USERNAME.%s and apps %s://APP.%s", cfg.Scheme(), cfg.CookieDomain, cfg.Scheme(), cfg.CookieDomain), nil, "")
		if len(cfg.IDPs) > 0 {
			// The files only: reaching each provider is a sign-in's business,
			// and the issuer starts whether or not one answers.
			add(fmt.Sprintf("client secrets of %d upstream provider(s) are readable", len(cfg.IDPs)), cfg.LoadSecrets(),
				"write each --idp client-secret-file, one line, readable by the issuer")
		}
		if !cfg.Secure() {
			checks = append(checks, check{name: "https", err: errors.New("http is for local development only"),
				fix: "serve behind TLS and use an https:// --url in production", warn: true})
		}
	}

	kopts := keyOptions(&cfg)
	var d *keys.Dir
	var kerr error
	if _, err := os.Stat(cfg.Keys); err != nil {
		kerr = fmt.Errorf("%s does not exist yet", cfg.Keys)
	} else if d, kerr = keys.Open(cfg.Keys, kopts); kerr == nil {
		kerr = d.Ready()
	}
	add("key directory "+cfg.Keys+" (0700, key files 0600, an active key for each algorithm)", kerr,
		"run `issuer serve` once to create it or its missing keys, or chmod 700 the directory and 600 the key files")

	now := time.Now()
	var clockErr error
	if now.Year() < 2025 {
		clockErr = fmt.Errorf("the clock says %s", now.UTC().Format(time.RFC3339))
	} else if d != nil {
		for _, k := range d.List() {
			if k.Created.After(now.Add(time.Minute)) {
				clockErr = fmt.Errorf("key %s was created at %s, in the future", k.KID, k.Created.UTC().Format(time.RFC3339))
			}
		}
	}
	add("clock is sane (after 2025, not behind the key files)", clockErr, "synchronise the clock with NTP: tokens carry exp/iat and relying services allow only a small leeway")

	var dbErr error
	var db store.Store
	if _, err := os.Stat(cfg.DB); err != nil && !strings.Contains(cfg.DB, "://") {
		dbErr = fmt.Errorf("%s does not exist yet: `issuer serve` creates it", cfg.DB)
	} else if db, dbErr = openStore(cfg.DB); dbErr == nil {
		defer db.Close()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		dbErr = db.Ping(pctx)
		cancel()
	}
	add("database "+cfg.DB+" reachable", dbErr, "check --db: the directory must be writable, or the PostgreSQL URL reachable")
	if verr == nil && dbErr == nil {
		checks = append(checks, reservedOwners(ctx, &cfg, db))
	}

	failed := 0
	for _, c := range checks {
		status := "ok  "
		switch {
		case c.err != nil && c.warn:
			status = "warn"
		case c.err != nil:
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(inv.io.Stdout, "[%s] %s\n", status, c.name)
		if c.err != nil {
			fmt.Fprintf(inv.io.Stdout, "       %s\n       fix: %s\n", strings.ReplaceAll(c.err.Error(), "\n", "\n       "), c.fix)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(checks))
	}
	fmt.Fprintf(inv.io.Stdout, "all %d checks passed\n", len(checks))
	return nil
}

// keyOptions are the key directory's options for every command: the
// tokens' algorithm and the ID tokens' ones, each needing an active key.
func keyOptions(cfg *config.Config) keys.Options {
	return keys.Options{Alg: cfg.Alg, Algs: wire.IDTokenAlgorithms(), JWKSMaxAge: cfg.JWKSMaxAge, AccessTTL: cfg.AccessTTL}
}
