package postgres

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

// migrationLock is the key of the transaction-scoped advisory lock that
// serialises migrations: any constant, as long as nothing else in the
// database uses it ("canopy" in ASCII).
const migrationLock int64 = 0x63616e6f7079

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

// migrate applies every migration the database has not recorded yet, all in
// one transaction together with their rows in the migrations table: schema
// changes are transactional in PostgreSQL, so a failed start leaves the
// schema as it was. The transaction first takes an advisory lock, so when
// several instances start at once they queue here and each later one finds
// the versions recorded and skips them: starting is idempotent.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return s.inTx(ctx, "migrate", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return wrap("migrate: lock", err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at BIGINT  NOT NULL
		)`); err != nil {
			return wrap("migrate: create table", err)
		}
		var latest int
		if err := tx.GetContext(ctx, &latest, `SELECT COALESCE(MAX(version), 0) FROM migrations`); err != nil {
			return wrap("migrate: read version", err)
		}
		if latest > len(ms) {
			// A newer binary has changed the schema in ways this one does
			// not know; writing to it could corrupt what that one relies on.
			return fmt.Errorf("database schema version %d is newer than this program's %d; upgrade the program", latest, len(ms))
		}
		for _, m := range ms[latest:] {
			op := "migrate: " + m.name
			// No arguments: pgx sends the file with the simple protocol,
			// which runs several statements.
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return wrap(op, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (version, applied_at) VALUES ($1, $2)`,
				m.version, toDB(s.now())); err != nil {
				return wrap(op+": record", err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.read(ctx, func() error {
		return s.db.GetContext(ctx, &v, `SELECT COALESCE(MAX(version), 0) FROM migrations`)
	})
	if err != nil {
		return 0, wrap("schema version", err)
	}
	return v, nil
}
