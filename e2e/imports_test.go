package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries reads `go list -deps` and fails when a relying
// service's code depends on the issuer's: relying/ and pkg/ must build
// without any package under issuer/ or keys/, pkg/ without a database
// driver, and a service that only verifies tokens (pkg/sso) or uses the
// net/http middleware (pkg/ssohttp) without echo: only pkg/ssoecho brings it;
// and no pkg/ package OpenTelemetry, which only internal/tracing brings.
func TestImportBoundaries(t *testing.T) {
	const mod = "github.com/canopy-sso/canopy/"
	for _, tc := range []struct {
		pkgs      []string
		forbidden []string
	}{
		{[]string{"./relying/...", "./pkg/..."}, []string{mod + "issuer", mod + "keys"}},
		{[]string{"./pkg/..."}, []string{"database/sql", "github.com/mattn/go-sqlite3", "github.com/jackc/pgx",
			"github.com/lib/pq", "github.com/go-sql-driver/", "modernc.org/sqlite", "github.com/jmoiron/sqlx"}},
		{[]string{"./pkg/sso", "./pkg/ssohttp", "./pkg/wire", "./pkg/trustedproxy"}, []string{"github.com/labstack/echo"}},
		// Tracing is a hook in pkg/sso; only the programs (internal/tracing) bring OpenTelemetry.
		{[]string{"./pkg/..."}, []string{"go.opentelemetry.io/"}},
	} {
		args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, tc.pkgs...)
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list found only %d packages for %v", len(deps), tc.pkgs)
		}
		for _, dep := range deps {
			for _, bad := range tc.forbidden {
				if dep == bad || strings.HasPrefix(dep, bad+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad)) {
					t.Errorf("%v depends on %s (forbidden: %s)", tc.pkgs, dep, bad)
				}
			}
		}
	}
}
