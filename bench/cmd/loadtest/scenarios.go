package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// runPages signs alice in, starts relying and the A/B server, and loads the
// page three ways: relying itself, then the A/B pair interleaved in rounds.
func runPages(ctx context.Context, o options, rep *report, dir, issuerURL, accessCookie string, ports []int) error {
	issuerBin := filepath.Join(o.bin, "issuer")
	const name, pw = "alice", "correct horse battery"
	if err := issuerCmd(ctx, issuerBin, pw+"\n", "user", "add", name, "--db", filepath.Join(dir, "issuer.db"),
		"--keys", filepath.Join(dir, "keys"), "--url", issuerURL); err != nil {
		return err
	}
	token, err := signIn(ctx, issuerURL, accessCookie, name, pw)
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	cookie := accessCookie + "=" + token

	rel, err := startProc(ctx, dir, filepath.Join(o.bin, "relying"), nil, "--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--issuer", issuerURL, "--host", "{username}.domain.localhost")
	if err != nil {
		return err
	}
	defer rel.stop()
	if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/.canopy/readyz", ports[0]), rel); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-serve-ab", "-issuer", issuerURL,
		"-auth-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "-plain-addr", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"-templates", filepath.Join(o.repo, "relying", "site", "templates")}
	if o.abProfile != "" {
		args = append(args, "-ab-cpuprofile", o.abProfile)
	}
	ab, err := startProc(ctx, dir, self, []string{"CANOPY_LOADTEST_TOKEN=" + token}, args...)
	if err != nil {
		return err
	}
	defer ab.stop()
	if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[2]), ab); err != nil {
		return err
	}

	c := loadClient(o.pageConc)
	page := func(port int) func(int) error {
		u := fmt.Sprintf("http://alice.domain.localhost:%d/", port)
		return func(int) error { return get(ctx, c, u, cookie) }
	}
	relying, withMW, bare := page(ports[0]), page(ports[1]), page(ports[2])
	for _, f := range []func(int) error{relying, withMW, bare} { // fail fast, and warm every connection
		if err := f(0); err != nil {
			return err
		}
		hammer(ctx, "warm-up", o.pageConc, time.Second, f)
	}
	logf("relying: %v at %d clients", o.duration, o.pageConc)
	rep.Scenarios = append(rep.Scenarios, hammer(ctx, "relying page, valid cookie", o.pageConc, o.duration, relying))

	// Short rounds, alternating, the order swapped each pair: the machine's
	// load drifts (on a shared machine, by a factor of two within seconds),
	// and this way it falls on both sides alike. The ratio is the median of
	// the pairs' ratios, which a stall landing in one round cannot move.
	const round = 500 * time.Millisecond
	rounds := max(2, int(o.duration/round))
	logf("A/B: %d rounds of %v each way", rounds, round)
	a := stats{Name: "same page, Canopy middleware", Conc: o.pageConc}
	b := stats{Name: "same page, no auth", Conc: o.pageConc}
	ratios := make([]float64, 0, rounds)
	for i := range rounds {
		var ra, rb stats
		if i%2 == 0 {
			ra = hammer(ctx, a.Name, o.pageConc, round, withMW)
			rb = hammer(ctx, b.Name, o.pageConc, round, bare)
		} else {
			rb = hammer(ctx, b.Name, o.pageConc, round, bare)
			ra = hammer(ctx, a.Name, o.pageConc, round, withMW)
		}
		if rb.PerSec > 0 {
			ratios = append(ratios, ra.PerSec/rb.PerSec)
		}
		a.merge(ra)
		b.merge(rb)
	}
	rep.Scenarios = append(rep.Scenarios, a, b)
	if b.PerSec > 0 {
		rep.AuthOverBareTotal = a.PerSec / b.PerSec
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		rep.AuthOverBare = ratios[len(ratios)/2]
	}
	return nil
}

// runRefreshModes loads POST /refresh in rounds that alternate between an
// issuer committing each rotation on its own (--sqlite-commit each) and one
// with group commit, each round a fresh issuer process on the same file and
// the same cookie chains, and reports both and their ratio.
func runRefreshModes(ctx context.Context, o options, rep *report, dir, issuerBin string, common []string,
	refreshCookie string, tokens []string) error {
	chains := append([]string(nil), tokens...) // carried across rounds
	modes := []string{"each", "group"}
	names := map[string]string{
		"each":  fmt.Sprintf("POST /refresh, %s sessions, fsync each", count(o.sessions)),
		"group": fmt.Sprintf("POST /refresh, %s sessions, group commit", count(o.sessions)),
	}
	total := map[string]*stats{}
	for _, m := range modes {
		total[m] = &stats{Name: names[m], Conc: o.refreshConc}
	}
	const rounds = 4
	per := max(time.Second, 2*o.duration/rounds)
	var ratios []float64
	for r := range rounds {
		var got [2]stats
		for i := range modes {
			m := modes[(i+r)%2] // the order swaps each round
			logf("refresh round %d/%d, --sqlite-commit %s: %v at %d clients, %d sessions stored", r+1, rounds, m, per, o.refreshConc, o.sessions)
			st, err := refreshRound(ctx, o, dir, issuerBin, common, m, refreshCookie, chains, per)
			if err != nil {
				return err
			}
			st.Name = names[m]
			total[m].merge(st)
			got[(i+r)%2] = st
		}
		if got[0].PerSec > 0 {
			ratios = append(ratios, got[1].PerSec/got[0].PerSec)
		}
	}
	rep.Scenarios = append(rep.Scenarios, *total["each"], *total["group"])
	if total["each"].PerSec > 0 {
		rep.GroupOverEachTotal = total["group"].PerSec / total["each"].PerSec
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		rep.GroupOverEach = (ratios[(len(ratios)-1)/2] + ratios[len(ratios)/2]) / 2
	}
	return nil
}

// refreshRound starts an issuer with --sqlite-commit mode and rotates
// refresh tokens from refreshConc clients for d, each client following its
// own cookie chain in chains; no Origin header (not a browser).
func refreshRound(ctx context.Context, o options, dir, issuerBin string, common []string, mode, refreshCookie string,
	chains []string, d time.Duration) (stats, error) {
	// The same URL and listener as the stopped main issuer: the cookies
	// and Host checks stay as they were.
	issuerURL := common[len(common)-1]
	pu, err := url.Parse(issuerURL)
	if err != nil {
		return stats{}, err
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:" + pu.Port(), "--access-ttl", "30m",
		"--sqlite-commit", mode}, common...)
	iss, err := startProc(ctx, dir, issuerBin, nil, args...)
	if err != nil {
		return stats{}, err
	}
	defer iss.stop()
	if err := waitReady(ctx, issuerURL+"/healthz", iss); err != nil {
		return stats{}, err
	}
	c := loadClient(o.refreshConc)
	u := issuerURL + "/refresh"
	rotate := func(w int) error { return refreshOnce(ctx, c, u, refreshCookie, chains, w) }
	pid := iss.cmd.Process.Pid
	server, client := procCPU(pid), selfCPU()
	st := hammer(ctx, mode, o.refreshConc, d, rotate)
	st.ServerCPU, st.ClientCPU = procCPU(pid)-server, selfCPU()-client
	if verbose {
		logf("%s: CPU per rotation: issuer %s, load generator %s", mode, cpuPer(st.ServerCPU, st), cpuPer(st.ClientCPU, st))
	}
	return st, nil
}

// refreshOnce presents worker w's refresh cookie to POST u and, on 204,
// keeps the successor from Set-Cookie in chains[w] (each worker owns its
// slot); no Origin header (not a browser).
func refreshOnce(ctx context.Context, c *http.Client, u, refreshCookie string, chains []string, w int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Cookie", refreshCookie+"="+chains[w])
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%w: POST /refresh: %s", errStatus, resp.Status)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == refreshCookie && ck.Value != "" {
			chains[w] = ck.Value
			return nil
		}
	}
	return fmt.Errorf("POST /refresh: 204 without a %s cookie", refreshCookie)
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func printReport(w io.Writer, rep *report, o options) {
	fmt.Fprintf(w, "Load test on %s; seeded %d sessions in %.1f s; disk fsync p50 %v\n\n", rep.Machine, rep.SeedSessions,
		rep.SeedSeconds, rep.FsyncP50.Round(time.Microsecond))
	fmt.Fprintf(w, "%-34s %4s %9s %6s %10s %9s %9s\n", "scenario", "conc", "requests", "errors", "req/s", "p50", "p99")
	fmt.Fprintln(w, strings.Repeat("-", 87))
	for _, s := range rep.Scenarios {
		fmt.Fprintln(w, s)
	}
	fmt.Fprintln(w)
	if rep.AuthOverBare > 0 {
		fmt.Fprintf(w, "middleware / no auth, req/s: median of paired rounds %.3f, totals %.3f (target ≥ 0.90: %s)\n",
			rep.AuthOverBare, rep.AuthOverBareTotal, metOrMissed(rep.AuthOverBare >= 0.9))
	}
	if rep.GroupOverEach > 0 {
		fmt.Fprintf(w, "refresh, group commit / fsync each, rotations/s: median of paired rounds %.2f, totals %.2f (target ≥ 2.5: %s)\n",
			rep.GroupOverEach, rep.GroupOverEachTotal, metOrMissed(rep.GroupOverEach >= 2.5))
	}
	if rep.PGTwoOverOne > 0 {
		fmt.Fprintf(w, "refresh on PostgreSQL, 2 instances / 1 instance, rotations/s: median of paired rounds %.2f (target ≥ 0.95, i.e. not slower within noise, on 2 cores: %s)\n",
			rep.PGTwoOverOne, metOrMissed(rep.PGTwoOverOne >= 0.95))
	}
	for _, s := range rep.Scenarios {
		if strings.HasSuffix(s.Name, "group commit") {
			fmt.Fprintf(w, "refresh rotations/s with group commit: %.0f, p99 %v (target ≥ 5000/s, p99 ≤ 50 ms, 0 errors: %s), errors %d\n",
				s.PerSec, s.P99.Round(time.Microsecond), metOrMissed(s.PerSec >= 5000 && s.P99 <= 50*time.Millisecond && s.Errors == 0), s.Errors)
		}
		if s.ServerCPU > 0 {
			fmt.Fprintf(w, "%s: CPU per rotation: issuer %s, load generator %s (%.0f%% of the two)\n", s.Name,
				cpuPer(s.ServerCPU, s), cpuPer(s.ClientCPU, s), 100*s.ClientCPU.Seconds()/(s.ServerCPU+s.ClientCPU).Seconds())
		}
		if s.FirstErr != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", s.Name, s.FirstErr)
		}
	}
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
