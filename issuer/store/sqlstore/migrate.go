package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Migration is one schema change, from a file named NNNN_what.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads fsys's migrations/*.sql in version order and checks
// that the versions run 1, 2, 3… without gaps or duplicates, so a misnamed
// file fails every start rather than silently skipping a change.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}

// Migrate applies every migration in fsys's migrations/*.sql that the
// database has not recorded yet, all in one transaction together with their
// rows in the migrations table: schema changes are transactional in both
// databases, so a failed start leaves the schema as it was. The transaction
// first takes the dialect's migration lock (SQLite's BEGIN IMMEDIATE is
// one already), so when several instances start at once they queue here
// and each later one finds the versions recorded and skips them: starting
// is idempotent.
func (s *Store) Migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := LoadMigrations(fsys)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "migrate", func(tx *sqlx.Tx) error {
		if s.d.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
				return s.d.Wrap("migrate: lock", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.d.MigrationsTable); err != nil {
			return s.d.Wrap("migrate: create table", err)
		}
		var latest int
		if err := tx.GetContext(ctx, &latest, s.q.SchemaVersion); err != nil {
			return s.d.Wrap("migrate: read version", err)
		}
		if latest > len(ms) {
			// A newer binary has changed the schema in ways this one does
			// not know; writing to it could corrupt what that one relies on.
			return s.d.errorf("database schema version %d is newer than this program's %d; upgrade the program", latest, len(ms))
		}
		for _, m := range ms[latest:] {
			op := "migrate: " + m.Name
			// No arguments: the drivers run a file of several statements.
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return s.d.Wrap(op, err)
			}
			if _, err := tx.ExecContext(ctx, s.q.RecordMigration, m.Version, ToDB(s.now())); err != nil {
				return s.d.Wrap(op+": record", err)
			}
		}
		return nil
	})
}
