package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is the test binary's one cluster, started by the first test that
// asks for it and closed by Main.
var shared struct {
	once    sync.Once
	mu      sync.Mutex
	cluster *Cluster
	err     error
	inMain  bool
}

// Main runs the tests of a package that calls Start or Shared and closes the
// shared cluster, if one was started, when they are done:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		if err := shared.cluster.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Shared returns the test binary's cluster, starting it on first use. When
// PostgreSQL is not installed it skips the test with a loud message, or fails
// it when CANOPY_REQUIRE_POSTGRES=1.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	inMain := shared.inMain
	shared.mu.Unlock()
	if !inMain {
		// Without Main nobody would stop the cluster when the tests end.
		t.Fatal("pgtest: call pgtest.Main from TestMain to use the shared cluster")
	}
	shared.once.Do(func() {
		c, err := StartCluster()
		shared.mu.Lock()
		shared.cluster, shared.err = c, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	c, err := shared.cluster, shared.err
	shared.mu.Unlock()
	if err != nil {
		SkipOrFail(t, err)
	}
	return c
}

// Start returns the URL of an empty database on the shared cluster for one
// test, as Database does.
func Start(t testing.TB) string {
	t.Helper()
	return Database(t, Shared(t))
}

// Database returns the URL of an empty database on c for one test, owned by
// an unprivileged role; when the test ends the database is emptied for the
// next one (Cluster.AcquireDatabase). With options (as for
// Cluster.CreateDatabase) it is a new database, dropped after the test.
func Database(t testing.TB, c *Cluster, options ...string) string {
	t.Helper()
	acquire, release := c.AcquireDatabase, c.ReleaseDatabase
	if len(options) > 0 {
		acquire = func(ctx context.Context) (string, string, error) { return c.CreateDatabase(ctx, options...) }
		release = c.DropDatabase
	}
	name, dsn, err := acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := release(ctx, name); err != nil {
			t.Errorf("%v", err)
		}
	})
	return dsn
}

// SkipOrFail reports that PostgreSQL cannot be used: a skip with a message
// that says how to install it, or, with CANOPY_REQUIRE_POSTGRES=1 or when
// PostgreSQL is installed but would not start, a failure.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("PostgreSQL is installed but the test cluster did not start: %v", err)
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s=1 but %v", EnvRequire, err)
	}
	t.Skipf("POSTGRES TESTS SKIPPED: %v. Install Debian's postgresql package "+
		"(apt-get install postgresql; the system service need not run), or set %s to the "+
		"directory of initdb and postgres. %s=1 turns this skip into a failure.", err, EnvBin, EnvRequire)
}
