package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/pgtest"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

// One cluster for the whole test binary; every test gets a fresh database.
// The tests do not run in parallel: TestConnectionLoss stops the cluster.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var base = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// openTemp opens a store on a fresh database.
func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	dsn := pgtest.Start(t)
	return openDSN(t, dsn), dsn
}

func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

// TestSettings: every commit is durable before it returns.
func TestSettings(t *testing.T) {
	s, dsn := openTemp(t)
	got, err := s.Settings(t.Context())
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	want := Settings{SynchronousCommit: "on", Fsync: "on", ApplicationName: "canopy-issuer", TransactionIso: "read committed"}
	if got != want {
		t.Fatalf("Settings = %+v, want %+v", got, want)
	}
	// A database default of off does not weaken the store.
	if _, err := s.db.Exec(`ALTER DATABASE ` + dbName(t, s) + ` SET synchronous_commit = off`); err != nil {
		t.Fatal(err)
	}
	if got, err := openDSN(t, dsn).Settings(t.Context()); err != nil || got.SynchronousCommit != "on" {
		t.Fatalf("with the database default off: synchronous_commit = %q, %v; want on", got.SynchronousCommit, err)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	want, err := sqlstore.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("LoadMigrations: %v", err)
	}
	s, dsn := openTemp(t)
	checkMigrations(t, s, len(want))
	for range 2 {
		checkMigrations(t, openDSN(t, dsn), len(want))
	}
}

// TestMigrateConcurrentFirstStart starts several instances on an empty
// database at once, as a deployment of a fleet would: the advisory lock makes
// them queue, and each migration is applied once.
func TestMigrateConcurrentFirstStart(t *testing.T) {
	const n = 8
	want, err := sqlstore.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("LoadMigrations: %v", err)
	}
	dsn := pgtest.Start(t)
	stores := make([]*Store, n)
	errs := make([]error, n)
	storetest.Barrier(n, func(i int) { stores[i], errs[i] = Open(t.Context(), dsn, Options{}) })
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
	s, dsn := openTemp(t)
	if _, err := s.db.Exec(`INSERT INTO migrations (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatalf("insert: %v", err)
	}
	_, err := Open(t.Context(), dsn, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open on a newer schema: %v, want a refusal", err)
	}
}

func TestOpenErrors(t *testing.T) {
	// A port nobody listens on: refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	for _, tc := range []struct {
		name        string
		dsn         string
		unavailable bool
	}{
		{"garbage", "postgres://%zz", false},
		{"unknown option", "postgres://u@127.0.0.1/db?no_such_option=1&sslmode=disable", true}, // the server refuses it
		{"refused", fmt.Sprintf("postgres://u:secret-pw@127.0.0.1:%d/db?sslmode=disable", closed), true},
		{"no such database", strings.Replace(pgtest.Start(t), "/t_", "/missing_", 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.dsn, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tc.unavailable)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://canopy:s3cret@db.example:5432/canopy?sslmode=require": "postgres://canopy:xxxxx@db.example:5432/canopy?sslmode=require",
		"postgres://canopy@db/canopy?password=s3cret":                     "postgres://canopy@db/canopy?password=xxxxx",
		"postgresql:///canopy?host=/run/postgresql":                       "postgresql:///canopy?host=/run/postgresql",
		"host=db user=canopy password=s3cret":                             "(connection string)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorTranslation(t *testing.T) {
	for _, tc := range []struct {
		name              string
		err               error
		unavailable, lost bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true, false},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true, false},
		{"disk full", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "53100"}), true, false},
		{"read-only standby", &pgconn.PgError{Code: "25006"}, true, false},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, true},
		{"network", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, true, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false, false},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false, false},
		{"something else", errors.New("something else"), false, false},
		{"cancelled", context.Canceled, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dialect.Wrap("op", tc.err)
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Errorf("wrap(%v): unavailable %v, want %v", tc.err, got, tc.unavailable)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("wrap(%v) lost the cause: %v", tc.err, err)
			}
			if got := connLost(tc.err); got != tc.lost {
				t.Errorf("connLost(%v) = %v, want %v", tc.err, got, tc.lost)
			}
		})
	}
	if !retryable(&pgconn.PgError{Code: "40P01"}) || !retryable(&pgconn.PgError{Code: "40001"}) || retryable(&pgconn.PgError{Code: "23505"}) {
		t.Error("retryable: deadlocks and serialization failures only")
	}
}

// dbName is the name of the database s is connected to.
func dbName(t testing.TB, s *Store) string {
	t.Helper()
	var name string
	if err := s.db.GetContext(t.Context(), &name, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	return name
}

func mustUser(t testing.TB, s *Store, id, name string) store.User {
	t.Helper()
	u := store.User{ID: id, Username: name, CreatedAt: base}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func mustSession(t testing.TB, s *Store, userID, sid, hash string) {
	t.Helper()
	sess := store.Session{ID: sid, UserID: userID, CreatedAt: base, AuthTime: base, ExpiresAt: base.Add(time.Hour),
		LastUsedAt: base, AccessUntil: base.Add(time.Minute)}
	if err := s.CreateSession(t.Context(), sess, hash); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

// TestUsernameAnyCase: lookups ignore case, as SQLite's NOCASE column does.
func TestUsernameAnyCase(t *testing.T) {
	s, _ := openTemp(t)
	mustUser(t, s, "u", "alice")
	for _, name := range []string{"alice", "Alice", "ALICE"} {
		if u, err := s.UserByName(t.Context(), name); err != nil || u.ID != "u" {
			t.Errorf("UserByName(%q) = %+v, %v", name, u, err)
		}
	}
}

// TestBytewiseOrder: the revoked feed and the user list sort by bytes, as
// SQLite does, even in a database whose default collation sorts otherwise
// (ICU puts '_' before letters and ignores case first).
func TestBytewiseOrder(t *testing.T) {
	dsn := pgtest.Database(t, pgtest.Shared(t), "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
	s := openDSN(t, dsn)
	ctx := t.Context()
	mustUser(t, s, "u", "alice")
	sids := []string{"a1", "B2", "_3", "-4", "Z5", "z6"}
	for _, sid := range sids {
		mustSession(t, s, "u", sid, "h-"+sid)
	}
	if err := s.RevokeUserSessions(ctx, "u", "", store.ReasonSignOutOthers, base); err != nil {
		t.Fatal(err)
	}
	got, err := s.RevokedSince(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.SID)
	}
	want := slices.Clone(sids)
	slices.Sort(want) // Go compares strings bytewise
	if !slices.Equal(ids, want) {
		t.Errorf("RevokedSince order = %q, want bytewise %q", ids, want)
	}
}
