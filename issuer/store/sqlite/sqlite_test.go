package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "canopy.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// TestConformance runs the suite on both commit paths: group commit (the
// default) and one transaction per rotation (Options.CommitEach).
func TestConformance(t *testing.T) {
	t.Run("group", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			s, _ := openTemp(t)
			return s
		})
	})
	t.Run("each", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			s, err := Open(filepath.Join(t.TempDir(), "canopy.db"), Options{CommitEach: true})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

// TestPragmasOnEveryConnection checks the settings on as many connections as
// the pool holds: a pragma run once with Exec would apply to one of them only.
func TestPragmasOnEveryConnection(t *testing.T) {
	s, _ := openTemp(t)
	got, err := s.Pragmas(t.Context())
	if err != nil {
		t.Fatalf("Pragmas: %v", err)
	}
	if len(got) != defaultMaxOpenConns {
		t.Fatalf("Pragmas read %d connections, want %d", len(got), defaultMaxOpenConns)
	}
	want := ConnPragmas{JournalMode: "wal", Synchronous: 2, ForeignKeys: 1, BusyTimeout: 10000}
	for i, p := range got {
		if p != want {
			t.Errorf("connection %d: %+v, want %+v", i, p, want)
		}
	}
	// One transaction per rotation keeps SQLite's own checkpoints.
	each, err := Open(filepath.Join(t.TempDir(), "each.db"), Options{CommitEach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = each.Close() }()
	if got, err = each.Pragmas(t.Context()); err != nil {
		t.Fatal(err)
	}
	want.AutoCheckpoint = 1000
	for i, p := range got {
		if p != want {
			t.Errorf("CommitEach connection %d: %+v, want %+v", i, p, want)
		}
	}
}

func TestMigrateIdempotent(t *testing.T) {
	want, err := sqlstore.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("LoadMigrations: %v", err)
	}
	s, path := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := range 2 {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("Open #%d: %v", i+2, err)
		}
		checkMigrations(t, s, len(want))
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// TestMigrateConcurrentFirstStart starts several "processes" on a missing
// file at once, as a supervisor restarting a fleet would.
func TestMigrateConcurrentFirstStart(t *testing.T) {
	const n = 8
	want, err := sqlstore.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("LoadMigrations: %v", err)
	}
	path := filepath.Join(t.TempDir(), "fresh", "canopy.db")
	stores := make([]*Store, n)
	errs := make([]error, n)
	storetest.Barrier(n, func(i int) { stores[i], errs[i] = Open(path, Options{}) })
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open #%d: %v", i, errs[i])
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	checkMigrations(t, stores[0], len(want))
}

func checkMigrations(t *testing.T, s *Store, want int) {
	t.Helper()
	v, err := s.SchemaVersion(t.Context())
	if err != nil || v != want {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
	var rows int
	if err := s.db.GetContext(t.Context(), &rows, `SELECT COUNT(*) FROM migrations`); err != nil || rows != want {
		t.Errorf("migrations rows = %d, %v; want %d (each applied once)", rows, err, want)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.db.Exec(`INSERT INTO migrations (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open on a newer schema: %v, want a refusal", err)
	}
}

// TestFileModes: the database holds password hashes and the refresh secret.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "db")
	path := filepath.Join(dir, "canopy.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CreateUser(t.Context(), store.User{ID: "u", Username: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	for name, want := range map[string]os.FileMode{
		dir:               0o700 | os.ModeDir,
		path:              0o600,
		path + "-wal":     0o600,
		path + "-shm":     0o600,
		filepath.Dir(dir): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Errorf("stat %s: %v", name, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

// TestPathIsNotParsed: '?', '#' and '%' in a path must name a file, not
// become URI parameters or escapes.
func TestPathIsNotParsed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "we?ird #dir %41")
	path := filepath.Join(dir, "canopy.db?_journal_mode=DELETE")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
	p, err := s.Pragmas(t.Context())
	if err != nil || p[0].JournalMode != "wal" {
		t.Fatalf("Pragmas = %+v, %v; want wal", p, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		path        string
		unavailable bool
	}{
		{"empty path", "", false},
		{"corrupt file", garbage, true},
		{"path is a directory", dir, true},
		{"parent is a file", filepath.Join(notDir, "canopy.db"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.path, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if tc.path != "" && !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the path", err)
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tc.unavailable)
			}
		})
	}
}

func TestErrorTranslation(t *testing.T) {
	for _, tc := range []struct {
		err         error
		unavailable bool
	}{
		{sqlite3.Error{Code: sqlite3.ErrCantOpen}, true},
		{sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrFsync}, true},
		{sqlite3.Error{Code: sqlite3.ErrNotADB}, true},
		{sqlite3.Error{Code: sqlite3.ErrBusy}, true},
		{fmt.Errorf("wrapped: %w", sqlite3.Error{Code: sqlite3.ErrFull}), true},
		{sqlite3.Error{Code: sqlite3.ErrConstraint, ExtendedCode: sqlite3.ErrConstraintUnique}, false},
		{errors.New("something else"), false},
	} {
		err := dialect.Wrap("op", tc.err)
		if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
			t.Errorf("wrap(%v): unavailable %v, want %v", tc.err, got, tc.unavailable)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("wrap(%v) lost the cause: %v", tc.err, err)
		}
	}
}

// TestTwoProcessesRace shares one file between two stores, each with its own
// pool, as two issuer processes would; SQLite's file locks must pick exactly
// one rotation and leave a sound file.
func TestTwoProcessesRace(t *testing.T) {
	const n = 50
	a, path := openTemp(t)
	b, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open second: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := t.Context()
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := a.CreateUser(ctx, store.User{ID: "u", Username: "alice", CreatedAt: base}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	sess := store.Session{ID: "s", UserID: "u", CreatedAt: base, AuthTime: base, ExpiresAt: base.Add(time.Hour),
		LastUsedAt: base, AccessUntil: base.Add(time.Minute)}
	if err := a.CreateSession(ctx, sess, "h0"); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	now := base.Add(time.Minute)
	req := store.RotateRequest{PresentedHash: "h0", SuccessorHash: "h1", Now: now, Grace: 30 * time.Second,
		AccessExpiry: now.Add(5 * time.Minute)}

	results := make([]store.RotateResult, n)
	errs := make([]error, n)
	storetest.Barrier(n, func(i int) {
		s := a
		if i%2 == 1 {
			s = b
		}
		results[i], errs[i] = s.RotateRefresh(ctx, req)
	})
	rotated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("rotation %d: %v", i, errs[i])
		}
		if results[i].Outcome == store.Rotated {
			rotated++
		}
	}
	if rotated != 1 {
		t.Fatalf("%d rotations across two processes, want exactly 1", rotated)
	}

	// A reuse seen by one process is committed before the other asks.
	late := req
	late.Now = now.Add(time.Minute)
	if _, err := a.RotateRefresh(ctx, late); !errors.Is(err, store.ErrReuse) {
		t.Fatalf("reuse via a: %v, want ErrReuse", err)
	}
	next := store.RotateRequest{PresentedHash: "h1", SuccessorHash: "h2", Now: late.Now, AccessExpiry: late.Now}
	if _, err := b.RotateRefresh(ctx, next); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("current token via b after reuse: %v, want ErrSessionEnded", err)
	}

	var check string
	if err := a.db.GetContext(ctx, &check, `PRAGMA integrity_check`); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	var fk int
	if err := a.db.GetContext(ctx, &fk, `SELECT COUNT(*) FROM pragma_foreign_key_check`); err != nil || fk != 0 {
		t.Fatalf("foreign_key_check: %d violations, %v", fk, err)
	}
}

// TestInjectedClock: times the caller does not pass come from Options.Now.
func TestInjectedClock(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "canopy.db"), Options{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.AddEvent(t.Context(), store.Event{Kind: "login"}); err != nil {
		t.Fatalf("AddEvent: %v", err)
	}
	events, err := s.Events(t.Context(), "", 1)
	if err != nil || len(events) != 1 || !events[0].At.Equal(at) {
		t.Fatalf("Events = %+v, %v; want one at %v", events, err, at)
	}
	var applied int64
	if err := s.db.GetContext(t.Context(), &applied, `SELECT MIN(applied_at) FROM migrations`); err != nil || !sqlstore.FromDB(applied).Equal(at) {
		t.Fatalf("migration applied at %v, %v; want %v", sqlstore.FromDB(applied), err, at)
	}
}

// TestRefreshRowsBounded: a refresh loop of 500 rotations leaves the session
// with at most store.KeptAncestors+1 refresh-token rows in the file.
func TestRefreshRowsBounded(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.CreateUser(ctx, store.User{ID: "u1", Username: "alice", PasswordHash: "x", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{ID: "s1", UserID: "u1", CreatedAt: base, AuthTime: base, ExpiresAt: base.Add(720 * time.Hour),
		LastUsedAt: base, AccessUntil: base.Add(5 * time.Minute)}
	if err := s.CreateSession(ctx, sess, storetest.BenchHash("s1", 0)); err != nil {
		t.Fatal(err)
	}
	now := base
	for i := range 500 {
		now = now.Add(time.Second)
		_, err := s.RotateRefresh(ctx, store.RotateRequest{PresentedHash: storetest.BenchHash("s1", i),
			SuccessorHash: storetest.BenchHash("s1", i+1), Now: now, Grace: 30 * time.Second,
			IdleTTL: time.Hour, AccessExpiry: now.Add(5 * time.Minute)})
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM refresh_tokens WHERE session_id = 's1'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > store.KeptAncestors+1 || n < 2 {
		t.Fatalf("%d refresh-token rows after 500 rotations, want 2 to %d", n, store.KeptAncestors+1)
	}
}
