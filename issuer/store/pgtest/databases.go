package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates an empty database owned by the unprivileged
// application role and returns its name and that role's URL of it. options
// are appended to CREATE DATABASE, for example
// "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'".
func (c *Cluster) CreateDatabase(ctx context.Context, options ...string) (name, dsn string, err error) {
	name = "t_" + strings.ToLower(rand.Text())
	stmt := strings.Join(append([]string{"CREATE DATABASE", name, "OWNER", appRole}, options...), " ")
	if _, err := c.admin.ExecContext(ctx, stmt); err != nil {
		return "", "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return name, c.DSN(appRole, name), nil
}

// DropDatabase drops a database, disconnecting whoever is still connected.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	if _, err := c.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// AcquireDatabase returns an empty database as CreateDatabase does, reusing
// one that ReleaseDatabase emptied when there is one: CREATE DATABASE copies
// and syncs a whole template (a second or more on a busy disk), emptying a
// database only drops what a test made in it.
func (c *Cluster) AcquireDatabase(ctx context.Context) (name, dsn string, err error) {
	c.mu.Lock()
	if n := len(c.free); n > 0 {
		name, c.free = c.free[n-1], c.free[:n-1]
	}
	c.mu.Unlock()
	if name != "" {
		return name, c.DSN(appRole, name), nil
	}
	return c.CreateDatabase(ctx)
}

// ReleaseDatabase empties a database from AcquireDatabase for the next test:
// it disconnects every session (their locks and settings go with them),
// drops every object the application role owns in it and resets its
// settings. A database that will not empty is dropped instead.
func (c *Cluster) ReleaseDatabase(ctx context.Context, name string) error {
	if err := c.empty(ctx, name); err != nil {
		return c.DropDatabase(ctx, name)
	}
	c.mu.Lock()
	c.free = append(c.free, name)
	c.mu.Unlock()
	return nil
}

func (c *Cluster) empty(ctx context.Context, name string) error {
	if _, err := c.admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
		return err
	}
	if _, err := c.admin.ExecContext(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` RESET ALL`); err != nil {
		return err
	}
	db, err := openDB(c.DSN(appRole, name))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(ctx, `DROP OWNED BY `+appRole+` CASCADE`); err != nil {
		return err
	}
	var left int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`).Scan(&left); err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("pgtest: %d relations left in %s", left, name)
	}
	return nil
}
