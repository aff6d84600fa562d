package pgtest

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("PGTEST_ORPHAN_CHILD") == "1" {
		orphanChild()
		return
	}
	os.Exit(Main(m))
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := openDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestDatabases: each test gets an empty database of its own, owned by a
// role without superuser rights (as an application's would be). A database
// handed back is emptied, settings and all, before the next test gets it.
func TestDatabases(t *testing.T) {
	c := Shared(t)
	var names []string
	current := func(t *testing.T, db *sql.DB) {
		t.Helper()
		var name string
		if err := db.QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	t.Run("first", func(t *testing.T) {
		dsn := Start(t)
		db := open(t, dsn)
		current(t, db)
		if _, err := db.Exec(`CREATE TABLE t (x int); CREATE SCHEMA other; CREATE TABLE other.u (y serial);
			ALTER DATABASE ` + names[0] + ` SET work_mem = '7MB'`); err != nil {
			t.Fatalf("the owner cannot create: %v", err)
		}
		var super bool
		if err := db.QueryRow(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || super {
			t.Fatalf("test role is superuser: %v, %v", super, err)
		}
		// A connection the test forgot to close, in a transaction holding locks.
		leaked, err := openDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := leaked.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_advisory_lock(1)`); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second", func(t *testing.T) {
		db := open(t, Start(t))
		current(t, db)
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pg_class WHERE relname IN ('t', 'u', 'u_y_seq')`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a fresh database has %d of the other test's relations: %v", n, err)
		}
		var mem string
		if err := db.QueryRow(`SHOW work_mem`).Scan(&mem); err != nil || mem == "7MB" {
			t.Fatalf("a fresh database kept the other test's setting: work_mem = %q, %v", mem, err)
		}
	})
	// The last database handed back is the next one handed out.
	if names[0] != names[1] {
		t.Errorf("the database was not reused: %v", names)
	}
	// A backend leaves pg_stat_activity a moment after its client hangs up.
	var mine int
	var err error
	admin := open(t, c.AdminDSN())
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err = admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, names[0]).Scan(&mine)
		if (err == nil && mine == 0) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || mine != 0 {
		t.Errorf("%d sessions still on %s after the tests: %v", mine, names[0], err)
	}
}

// TestStopStart: a stopped server refuses connections; started again on the
// same directory and port it has kept its data, durably (fsync on).
func TestStopStart(t *testing.T) {
	c := Shared(t)
	dsn := Start(t)
	db := open(t, dsn)
	if _, err := db.Exec(`CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := db.QueryRow(`SHOW fsync`).Scan(&fsync); err != nil || fsync != "on" {
		t.Fatalf("fsync = %q, %v; want on", fsync, err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port()), time.Second); err == nil {
		_ = conn.Close()
		t.Fatal("the stopped server still accepts connections")
	}
	if err := c.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// A new handle: the old one's pooled connection was cut by the shutdown.
	var x int
	if err := open(t, dsn).QueryRow(`SELECT x FROM kept`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("after a restart: %d, %v; want 42", x, err)
	}
}

// TestGuard: when the test binary dies without closing its cluster, the
// server stops and its directory goes away.
func TestGuard(t *testing.T) {
	Shared(t) // skips or fails like every other test when PostgreSQL is missing
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGTEST_ORPHAN_CHILD=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	_ = cmd.Wait()
	var (
		dir  string
		port int
	)
	if _, err := fmt.Sscanf(line, "%s %d", &dir, &port); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		conn, dialErr := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if dialErr == nil {
			_ = conn.Close()
		}
		if errors.Is(statErr, os.ErrNotExist) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after its test binary died: dir %s stat %v, port %d dial %v", dir, statErr, port, dialErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// orphanChild starts a cluster, says where, and exits without closing it.
func orphanChild() {
	c, err := StartCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := c.CreateDatabase(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s %d\n", c.dir, c.Port())
	os.Exit(0)
}

func TestSkipOrFail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		require string
		want    string // "skip" or "fail"
	}{
		{"missing", fmt.Errorf("wrapped: %w", ErrNotInstalled), "", "skip"},
		{"missing but required", ErrNotInstalled, "1", "fail"},
		{"installed but broken", errors.New("initdb: no space left"), "", "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRequire, tc.require)
			rec := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				SkipOrFail(rec, tc.err)
			}()
			<-done
			got := "none"
			switch {
			case rec.skipped:
				got = "skip"
			case rec.failed:
				got = "fail"
			}
			if got != tc.want {
				t.Fatalf("SkipOrFail(%v) with %s=%q: %s, want %s (%s)", tc.err, EnvRequire, tc.require, got, tc.want, rec.msg)
			}
			if got == "skip" && !strings.Contains(rec.msg, "POSTGRES TESTS SKIPPED") {
				t.Errorf("skip message is not loud: %q", rec.msg)
			}
		})
	}
}

// recorder captures a skip or a failure instead of ending the real test.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
