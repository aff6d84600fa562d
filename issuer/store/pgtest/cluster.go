// Package pgtest runs a throwaway PostgreSQL cluster for tests: one cluster
// per test binary, started from the binaries of an installed PostgreSQL, with
// a fresh database for every test.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Environment variables that steer the tests.
const (
	// EnvRequire set to 1 turns "PostgreSQL is not installed" from a skip into
	// a failure, so that CI cannot pass without running these tests.
	EnvRequire = "CANOPY_REQUIRE_POSTGRES"
	// EnvBin names the directory holding initdb and postgres, for
	// installations outside Debian's /usr/lib/postgresql/VERSION/bin.
	EnvBin = "CANOPY_POSTGRES_BIN"
)

// ErrNotInstalled means no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found")

// Roles of the cluster: the superuser that owns it, and the unprivileged
// role that owns each test database, as an application's role would.
const (
	adminRole = "postgres"
	appRole   = "canopy"
)

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 30 * time.Second

// Cluster is a running (or stopped) throwaway PostgreSQL cluster listening on
// a loopback port. Its data directory lives in a temporary directory that
// Close removes.
type Cluster struct {
	bin  string // directory of initdb and postgres
	dir  string // temporary directory: data/ and the Unix socket
	port int
	as   *account // OS account the server runs as; nil: the current one

	mu     sync.Mutex
	server *server // nil while stopped
	admin  *sql.DB
	free   []string // emptied databases ready for the next test
}

// StartCluster creates a cluster with initdb in a new temporary directory and
// starts it. It returns an error wrapping ErrNotInstalled when PostgreSQL is
// missing. As root, the server runs as the "postgres" system user that
// Debian's package creates, since PostgreSQL refuses to run as root.
func StartCluster() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	as, err := serverAccount()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "canopy-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{bin: bin, dir: dir, as: as}
	if err := c.create(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			break
		}
		if err = c.Start(); err == nil || attempt == 2 {
			break
		}
		// Most likely another process took the port between freePort and
		// the server's bind: try another.
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if c.admin, err = openDB(c.AdminDSN()); err != nil {
		_ = c.Close()
		return nil, err
	}
	// Each admin statement opens its own connection: the server may be
	// stopped and started by a test, which kills pooled ones.
	c.admin.SetMaxIdleConns(0)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := c.admin.ExecContext(ctx, `CREATE ROLE `+appRole+` LOGIN`); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("pgtest: create role: %w", err)
	}
	return c, nil
}

// findBin returns the directory holding initdb and postgres: $CANOPY_POSTGRES_BIN,
// else the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH),
// else wherever PATH finds initdb.
func findBin() (string, error) {
	has := func(dir string) bool {
		for _, prog := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, prog)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(EnvBin); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%w in %s=%s", ErrNotInstalled, EnvBin, dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first: 9.6 < 10 < 15 compares as numbers.
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w in /usr/lib/postgresql/*/bin or on PATH", ErrNotInstalled)
}

// account is an OS user to run the server as.
type account struct {
	name     string
	uid, gid uint32
}

// serverAccount returns the account to run the server as: nil (the current
// one) unless the tests run as root, where it is the "postgres" user.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, PostgreSQL must run as another user, "+
			"and the \"postgres\" system user (created by Debian's postgresql package) is missing: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user postgres: %w", err)
	}
	return &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// create runs initdb. fsync stays on for the server (revocations must be
// durable in the tests as in production); --no-sync only skips initdb's own
// final flush of a cluster that is thrown away anyway.
func (c *Cluster) create() error {
	if c.as != nil {
		if err := os.Chown(c.dir, int(c.as.uid), int(c.as.gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	cmd := c.command(filepath.Join(c.bin, "initdb"), "-D", c.dataDir(), "-U", adminRole,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

// command prepares a program to run as the server's account in the
// temporary directory (the test's working directory may be unreadable to it).
func (c *Cluster) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(prog, args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGTEST_DIR=" + c.dir}
	setAccount(cmd, c.as)
	return cmd
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// DSN returns the URL of database db as role.
func (c *Cluster) DSN(role, db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", role, c.port, db)
}

// AdminDSN is the superuser's URL of the "postgres" database, for tests that
// need privileges an application has not (pg_terminate_backend).
func (c *Cluster) AdminDSN() string { return c.DSN(adminRole, "postgres") }

// Port is the loopback TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Start starts the stopped server on its data directory and port, and waits
// until it accepts connections.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server != nil {
		return errors.New("pgtest: server already running")
	}
	s, err := startServer(c.command(filepath.Join(c.bin, "postgres"), "-D", c.dataDir(),
		"-p", strconv.Itoa(c.port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on",
		"-c", "max_connections=200", "-c", "log_min_messages=warning"))
	if err != nil {
		return err
	}
	if err := waitReady(s, c.AdminDSN()); err != nil {
		_ = s.stop(true) // keep the data: the caller may try another port
		return err
	}
	c.server = s
	return nil
}

// Stop shuts the server down (fast mode: open sessions are disconnected) and
// keeps its data for Start.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server == nil {
		return nil
	}
	err := c.server.stop(true)
	c.server = nil
	return err
}

// Close stops the server and removes its directory. Closing twice is harmless.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin != nil {
		_ = c.admin.Close() // nothing to flush
		c.admin = nil
	}
	var err error
	if c.server != nil {
		err = c.server.stop(false)
		c.server = nil
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

// waitReady polls until the server accepts a connection, or reports why not.
func waitReady(s *server, dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.ConnectConfig(ctx, cfg)
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited during start-up:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after %s: %w\n%s", startTimeout, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openDB(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return stdlib.OpenDB(*cfg), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
