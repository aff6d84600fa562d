package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
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

// loadMigrations reads the embedded files; see sqlstore.LoadMigrations.
func loadMigrations() ([]sqlstore.Migration, error) {
	return sqlstore.LoadMigrations(migrationFiles)
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
		if err := tx.GetContext(ctx, &latest, queries.SchemaVersion); err != nil {
			return wrap("migrate: read version", err)
		}
		if latest > len(ms) {
			// A newer binary has changed the schema in ways this one does
			// not know; writing to it could corrupt what that one relies on.
			return fmt.Errorf("database schema version %d is newer than this program's %d; upgrade the program", latest, len(ms))
		}
		for _, m := range ms[latest:] {
			op := "migrate: " + m.Name
			// No arguments: pgx sends the file with the simple protocol,
			// which runs several statements.
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return wrap(op, err)
			}
			if _, err := tx.ExecContext(ctx, queries.RecordMigration,
				m.Version, sqlstore.ToDB(s.now())); err != nil {
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
		return s.db.GetContext(ctx, &v, queries.SchemaVersion)
	})
	if err != nil {
		return 0, wrap("schema version", err)
	}
	return v, nil
}
