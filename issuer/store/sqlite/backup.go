package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the live database to path with VACUUM
// INTO, while other connections and processes keep reading and writing. The
// copy is a complete SQLite file (not WAL-dependent); it refuses to overwrite.
func (s *Store) Backup(ctx context.Context, path string) error {
	if path == "" {
		return errors.New("sqlite: backup: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Stat(abs); err == nil {
		return fmt.Errorf("sqlite: backup: %s exists; choose a new file", abs)
	}
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		return dialect.Wrap("backup", err)
	}
	// The copy holds password hashes and the refresh secret, like the original.
	if err := os.Chmod(abs, 0o600); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	return nil
}
