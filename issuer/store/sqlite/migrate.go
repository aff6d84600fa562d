package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// migrationFiles holds the schema changes, one file per version, named
// NNNN_what.sql. A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded files in version order and checks that
// the versions run 1, 2, 3… without gaps or duplicates, so a misnamed file
// fails every start rather than silently skipping a change.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", base)
		}
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate applies every migration the database has not recorded yet, each in
// its own transaction together with its row in the migrations table. Because
// every transaction is BEGIN IMMEDIATE, two processes starting at once
// serialise here: the second sees the first one's rows and skips those
// versions, so starting is idempotent.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "migrate: create table", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at INTEGER NOT NULL
		) STRICT`)
		if err != nil {
			return wrap("migrate: create table", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range ms {
		op := "migrate: " + m.name
		err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
			var latest int
			if err := tx.GetContext(ctx, &latest, `SELECT COALESCE(MAX(version), 0) FROM migrations`); err != nil {
				return wrap(op, err)
			}
			if latest > len(ms) {
				// A newer binary has changed the schema in ways this one does
				// not know; writing to it could corrupt what that one relies on.
				return fmt.Errorf("sqlite: database schema version %d is newer than this program's %d; upgrade the program", latest, len(ms))
			}
			if latest >= m.version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return wrap(op, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (version, applied_at) VALUES (?, ?)`,
				m.version, toDB(s.now())); err != nil {
				return wrap(op+": record", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.GetContext(ctx, &v, `SELECT COALESCE(MAX(version), 0) FROM migrations`); err != nil {
		return 0, wrap("schema version", err)
	}
	return v, nil
}
