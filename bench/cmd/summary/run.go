package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// suite is one package's benchmarks: its test binary is built once and run
// once per round, so that benchmarks compared with each other run close in
// time, and every figure is the median over the rounds.
type suite struct {
	pkg       string // relative to the repository
	bench     string // -test.bench
	benchtime string
	// inProcessCount runs the rounds inside one process (-test.count), for
	// suites with an expensive fixture (the 1M-session database).
	inProcessCount bool
	once           bool // one run only (the login burst)
}

// results maps a benchmark name (without the -GOMAXPROCS suffix) to each
// unit's values, one per round.
type results map[string]map[string][]float64

func (r results) add(name, unit string, v float64) {
	if r[name] == nil {
		r[name] = map[string][]float64{}
	}
	r[name][unit] = append(r[name][unit], v)
}

// median of a benchmark's unit, and whether it was measured.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// build compiles the suite's test binary into dir.
func (s suite) build(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, strings.ReplaceAll(s.pkg, "/", "_")+".test")
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./"+s.pkg)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c ./%s: %w\n%s", s.pkg, err, out)
	}
	return bin, nil
}

// run runs the suite's binary once, in its package directory as go test
// does, and adds what it printed to res.
func (s suite) run(ctx context.Context, repo, bin string, count int, res results) error {
	args := []string{"-test.run", "^$", "-test.bench", s.bench, "-test.benchmem", "-test.timeout", "15m"}
	if s.benchtime != "" {
		args = append(args, "-test.benchtime", s.benchtime)
	}
	if s.inProcessCount {
		args = append(args, "-test.count", strconv.Itoa(count))
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = filepath.Join(repo, s.pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	parse(out.Bytes(), res)
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", s.pkg, err, tail(out.String(), 3000))
	}
	return nil
}

// parse reads benchmark lines: "BenchmarkX-2  N  1234 ns/op  56 B/op ...".
func parse(out []byte, res results) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				res.add(name, f[i+1], v)
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "summary: "+format+"\n", args...) }
