package sqlite

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

// loadMigrations reads the embedded files; see sqlstore.LoadMigrations.
func loadMigrations() ([]sqlstore.Migration, error) {
	return sqlstore.LoadMigrations(migrationFiles)
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
		op := "migrate: " + m.Name
		err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
			var latest int
			if err := tx.GetContext(ctx, &latest, queries.SchemaVersion); err != nil {
				return wrap(op, err)
			}
			if latest > len(ms) {
				// A newer binary has changed the schema in ways this one does
				// not know; writing to it could corrupt what that one relies on.
				return fmt.Errorf("sqlite: database schema version %d is newer than this program's %d; upgrade the program", latest, len(ms))
			}
			if latest >= m.Version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return wrap(op, err)
			}
			if _, err := tx.ExecContext(ctx, queries.RecordMigration,
				m.Version, sqlstore.ToDB(s.now())); err != nil {
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
	if err := s.db.GetContext(ctx, &v, queries.SchemaVersion); err != nil {
		return 0, wrap("schema version", err)
	}
	return v, nil
}
