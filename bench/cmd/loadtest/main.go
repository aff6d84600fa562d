// Command loadtest drives the real issuer and relying programs over loopback
// and reports throughput and latency:
//
//   - pages: the relying example's page with a valid access cookie, and the
//     same page handler with and without Canopy's middleware in one process
//     of its own (see abserver.go), interleaved, with their ratio;
//   - refresh: POST /refresh from 64 clients, each following its own cookie
//     chain, against an issuer whose database holds a million sessions, in
//     alternating rounds with group commit and with one fsync per rotation
//     (--sqlite-commit each), and their ratio.
//
// Every scenario runs for a fixed time at a fixed concurrency and stops by
// itself; nothing leaves the machine. Build the programs first (make build).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/pkg/localhost"
)

type options struct {
	bin, repo             string
	duration              time.Duration
	pageConc, refreshConc int
	sessions              int
	jsonOut               bool
	only                  string
	noPostgres            bool
	abProfile             string
}

// report is what -json prints, for bench/cmd/summary.
type report struct {
	Machine      string  `json:"machine"`
	SeedSessions int     `json:"seed_sessions"`
	SeedSeconds  float64 `json:"seed_seconds"`
	Scenarios    []stats `json:"scenarios"`
	// AuthOverBare is req/s with the middleware ÷ without: the median of the
	// paired rounds' ratios; AuthOverBareTotal divides the totals.
	AuthOverBare      float64 `json:"auth_over_bare"`
	AuthOverBareTotal float64 `json:"auth_over_bare_total"`
	// FsyncP50 is the disk's fsync latency, measured just before the refresh
	// scenario in the database's directory.
	FsyncP50 time.Duration `json:"fsync_p50_ns"`
	// GroupOverEach is rotations/s with group commit ÷ with one fsync per
	// rotation: the median of the paired rounds' ratios; GroupOverEachTotal
	// divides the totals.
	GroupOverEach      float64 `json:"group_over_each"`
	GroupOverEachTotal float64 `json:"group_over_each_total"`
	// PGTwoOverOne is rotations/s on PostgreSQL with two issuer instances
	// ÷ with one: the median of the paired rounds' ratios.
	PGTwoOverOne  float64 `json:"pg_two_over_one"`
	PGSeedSeconds float64 `json:"pg_seed_seconds"`
}

func main() {
	var o options
	var ab abConfig
	serve := flag.Bool("serve-ab", false, "internal: run the A/B page server")
	flag.StringVar(&ab.issuer, "issuer", "", "internal: issuer URL for -serve-ab")
	flag.StringVar(&ab.authAddr, "auth-addr", "", "internal: address of the listener with the middleware")
	flag.StringVar(&ab.plainAddr, "plain-addr", "", "internal: address of the listener without it")
	flag.StringVar(&ab.templates, "templates", "", "internal: relying's template directory")
	flag.StringVar(&ab.cpuProfile, "ab-cpuprofile", "", "write the A/B server's CPU profile to this file")
	flag.StringVar(&o.bin, "bin", "../bin", "directory holding the issuer and relying programs")
	flag.StringVar(&o.repo, "repo", "..", "the Canopy repository (for relying's page template)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each scenario runs")
	flag.IntVar(&o.pageConc, "page-conc", 16, "concurrent clients for the page scenarios")
	flag.IntVar(&o.refreshConc, "refresh-conc", 64, "concurrent clients for POST /refresh")
	flag.IntVar(&o.sessions, "sessions", 1_000_000, "sessions seeded in the issuer's database")
	flag.BoolVar(&o.jsonOut, "json", false, "print the results as JSON on stdout")
	flag.StringVar(&o.only, "only", "", `run only "pages", "refresh" (SQLite and PostgreSQL) or "postgres"`)
	flag.BoolVar(&o.noPostgres, "no-postgres", false, "skip the PostgreSQL refresh scenarios")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *serve {
		if err := serveAB(ctx, ab); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest -serve-ab:", err)
			os.Exit(1)
		}
		return
	}
	// However the scenarios are set, the whole run is bounded.
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	o.abProfile = ab.cpuProfile
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	if o.jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(rep)
		return
	}
	printReport(os.Stdout, rep, o)
}

func run(ctx context.Context, o options) (*report, error) {
	for _, p := range []string{"issuer", "relying"} {
		if _, err := os.Stat(filepath.Join(o.bin, p)); err != nil {
			return nil, fmt.Errorf("%v: run make build first", err)
		}
	}
	dir, err := os.MkdirTemp("", "canopy-loadtest-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	rep := &report{Machine: machine(), SeedSessions: o.sessions}

	logf("seeding %d sessions…", o.sessions)
	db := filepath.Join(dir, "issuer.db")
	tokens, took, err := seed(ctx, db, o.sessions, o.refreshConc)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	rep.SeedSeconds = took.Seconds()
	logf("seeded in %v", took.Round(time.Millisecond))

	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	issuerURL := fmt.Sprintf("http://domain.localhost:%d", ports[0])
	cookies := (&config.Config{URL: issuerURL}).Cookies()
	issuerBin := filepath.Join(o.bin, "issuer")
	common := []string{"--db", db, "--keys", filepath.Join(dir, "keys"), "--url", issuerURL}
	iss, err := startProc(ctx, dir, issuerBin, nil, append([]string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--access-ttl", "30m"}, common...)...)
	if err != nil {
		return nil, err
	}
	defer iss.stop()
	if err := waitReady(ctx, issuerURL+"/healthz", iss); err != nil {
		return nil, err
	}

	if o.only != "refresh" {
		if err := runPages(ctx, o, rep, dir, issuerURL, cookies.Access, ports[1:]); err != nil {
			return nil, err
		}
	}
	if o.only == "" || o.only == "refresh" {
		if rep.FsyncP50, err = fsyncLatency(dir); err != nil {
			return nil, err
		}
		iss.stop() // each commit mode gets issuers of its own on the same file
		if err := runRefreshModes(ctx, o, rep, dir, issuerBin, common, cookies.Refresh, tokens); err != nil {
			return nil, err
		}
	}
	if (o.only == "" || o.only == "refresh" || o.only == "postgres") && !o.noPostgres {
		iss.stop()
		if err := runPostgres(ctx, o, rep, dir, issuerBin, issuerURL, cookies.Refresh); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// loadClient is the one HTTP client every scenario uses: keep-alive
// connections, one per worker, dialled on loopback.
func loadClient(conc int) *http.Client {
	t := localhost.Transport()
	t.MaxIdleConnsPerHost, t.MaxConnsPerHost = conc, conc
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches u with the access cookie as a browser navigation and expects 200.
func get(ctx context.Context, c *http.Client, u, cookie string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: %s", errStatus, u, resp.Status)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", args...)
}

// machine names the CPU and its cores, for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores", model, runtime.NumCPU())
}
