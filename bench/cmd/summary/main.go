// Command summary runs Canopy's benchmarks and load test and prints one table
// of the figures that matter, with their ratios and targets (make bench).
// With -peers it prints the side-by-side comparison with other Go JWT
// verifiers instead (make bench-peers).
//
// Each suite's test binary is built once and run in rounds; every figure is
// the median over the rounds, and every ratio is taken between benchmarks of
// the same process, the raw and cold verifies even within one loop, so that a
// busy machine slows both sides of a ratio alike.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"time"
)

type options struct {
	repo, bin    string
	count        int
	loadDuration time.Duration
	noLoad       bool
	peers        bool
}

// suites are what make bench runs, in order.
var suites = []suite{
	{pkg: "pkg/sso", bench: "^Benchmark(ColdVsRaw|VerifyCold(EdDSA|ES256)|VerifyWarm|Raw(Ed25519|ES256))$", benchtime: "1s"},
	{pkg: "pkg/ssohttp", bench: "^BenchmarkMiddleware$", benchtime: "300ms"},
	{pkg: "keys", bench: "^BenchmarkMint$", benchtime: "500ms"},
	{pkg: "issuer/password", bench: "^BenchmarkVerifyOWASP$", benchtime: "10x"},
	{pkg: "issuer/store/sqlite", bench: "^BenchmarkRotateScale$", benchtime: "1500x", inProcessCount: true},
	{pkg: "issuer/store/sqlite", bench: "^BenchmarkRevocationPoll$", benchtime: "100x", inProcessCount: true},
	{pkg: "pkg/sso", bench: "^BenchmarkRevocationSetMemory$", benchtime: "2x"},
	{pkg: "e2e", bench: "^Benchmark(LoginBurst|SignOutPropagation(Relying|TwoInstances)?|StreamSubscribers|StreamRestart|CLIRevocationToStream)$", benchtime: "1x", once: true},
}

// peerSuite is make bench-peers: the nested module's own package.
var peerSuite = suite{pkg: "peers", bench: "^BenchmarkPeers$", benchtime: "1s"}

func main() {
	var o options
	flag.StringVar(&o.repo, "repo", "..", "the Canopy repository")
	flag.StringVar(&o.bin, "bin", "../bin", "the built issuer and relying programs, for the load test")
	flag.IntVar(&o.count, "count", 5, "rounds of every benchmark (medians are reported)")
	flag.DurationVar(&o.loadDuration, "load-duration", 6*time.Second, "duration of each load-test scenario")
	flag.BoolVar(&o.noLoad, "no-load", false, "skip the load test")
	flag.BoolVar(&o.peers, "peers", false, "compare with other verifiers instead")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	start := time.Now()
	var err error
	if o.peers {
		err = runPeers(ctx, o)
	} else {
		err = runAll(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
	fmt.Printf("\n(%s in %v)\n", machine(), time.Since(start).Round(time.Second))
}

func runAll(ctx context.Context, o options) error {
	res, benchErr := runSuites(ctx, o.repo, suites, o.count)
	if ctx.Err() != nil {
		return benchErr
	}
	var load *loadReport
	var loadErr error
	if !o.noLoad {
		load, loadErr = runLoad(ctx, o)
	}
	missed := printSummary(os.Stdout, res, load, o.count)
	if err := errors.Join(benchErr, loadErr); err != nil {
		return err
	}
	if missed > 0 {
		fmt.Printf("\n%d target(s) missed.\n", missed)
	}
	return nil
}

func runPeers(ctx context.Context, o options) error {
	here, err := os.Getwd()
	if err != nil {
		return err
	}
	res, err := runSuites(ctx, here, []suite{peerSuite}, o.count)
	printPeers(os.Stdout, res, o.count)
	return err
}

// runSuites builds every suite's binary, then runs the rounds.
func runSuites(ctx context.Context, repo string, ss []suite, count int) (results, error) {
	dir, err := os.MkdirTemp("", "canopy-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bins := make([]string, len(ss))
	for i, s := range ss {
		logf("building %s", s.pkg)
		if bins[i], err = s.build(ctx, repo, dir); err != nil {
			return nil, err
		}
	}
	// A failing benchmark (the login burst's "other failures") is reported
	// after the table, not instead of it.
	res := results{}
	var errs []error
	for i, s := range ss {
		if s.inProcessCount || s.once {
			logf("%s: %s", s.pkg, s.bench)
			errs = append(errs, s.run(ctx, repo, bins[i], count, res))
		}
	}
	for r := range count {
		for i, s := range ss {
			if s.inProcessCount || s.once {
				continue
			}
			logf("round %d/%d: %s %s", r+1, count, s.pkg, s.bench)
			errs = append(errs, s.run(ctx, repo, bins[i], count, res))
		}
	}
	return res, errors.Join(errs...)
}

// loadReport is what cmd/loadtest -json prints.
type loadReport struct {
	Machine      string  `json:"machine"`
	SeedSessions int     `json:"seed_sessions"`
	SeedSeconds  float64 `json:"seed_seconds"`
	Scenarios    []struct {
		Name     string  `json:"name"`
		Conc     int     `json:"concurrency"`
		Requests int     `json:"requests"`
		Errors   int     `json:"errors"`
		PerSec   float64 `json:"per_sec"`
		P50      int64   `json:"p50_ns"`
		P99      int64   `json:"p99_ns"`
		FirstErr string  `json:"first_error"`
	} `json:"scenarios"`
	GroupOverEach      float64 `json:"group_over_each"`
	GroupOverEachTotal float64 `json:"group_over_each_total"`
	PGTwoOverOne       float64 `json:"pg_two_over_one"`
	AuthOverBare       float64 `json:"auth_over_bare"`
	AuthOverBareTotal  float64 `json:"auth_over_bare_total"`
	FsyncP50           int64   `json:"fsync_p50_ns"`
}

func runLoad(ctx context.Context, o options) (*loadReport, error) {
	logf("load test (%v per scenario)", o.loadDuration)
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/loadtest", "-json", "-duration", o.loadDuration.String(),
		"-bin", o.bin, "-repo", o.repo)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("load test: %w", err)
	}
	var rep loadReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("load test output: %w", err)
	}
	return &rep, nil
}

// machine names the CPU and its cores.
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
	return fmt.Sprintf("%s, %d cores, %s", model, runtime.NumCPU(), runtime.Version())
}
