package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the summary table; empty cells print as "–".
type row struct {
	name                 string
	ns, bytes, allocs    string
	ratio, target, check string
}

// verdict is "met" or "MISSED", counting misses.
type verdict struct{ missed int }

func (v *verdict) of(ok bool) string {
	if ok {
		return "met"
	}
	v.missed++
	return "MISSED"
}

func dur(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// cells returns a benchmark's median ns/op, B/op and allocs/op as text; ns
// may come from another benchmark's custom unit (the paired ones).
func (r results) cells(name string) (ns, b, allocs string) {
	ns, b, allocs = "–", "–", "–"
	if v, ok := r.median(name, "ns/op"); ok {
		ns = dur(v)
	}
	if v, ok := r.median(name, "B/op"); ok {
		b = fmt.Sprintf("%.0f", v)
	}
	if v, ok := r.median(name, "allocs/op"); ok {
		allocs = fmt.Sprintf("%.0f", v)
	}
	return ns, b, allocs
}

func (r results) get(name, unit string) float64 {
	v, _ := r.median(name, unit)
	return v
}

// printSummary prints the tables and returns how many targets were missed.
func printSummary(w io.Writer, r results, load *loadReport, count int) int {
	var v verdict
	var rows []row
	add := func(x row) { rows = append(rows, x) }

	for _, alg := range []struct{ name, raw, cold string }{
		{"EdDSA", "RawEd25519", "VerifyColdEdDSA"}, {"ES256", "RawES256", "VerifyColdES256"},
	} {
		pair := "ColdVsRaw/" + alg.name
		_, rb, ra := r.cells(alg.raw)
		add(row{name: "verify " + alg.name + ": raw stdlib signature check", ns: dur(r.get(pair, "raw-ns/op")), bytes: rb, allocs: ra, ratio: "1.00× raw"})
		_, cb, ca := r.cells(alg.cold)
		ratio, ok := r.median(pair, "cold/raw")
		add(row{name: "verify " + alg.name + ": Canopy cold (no cache)", ns: dur(r.get(pair, "cold-ns/op")), bytes: cb, allocs: ca,
			ratio: fmt.Sprintf("%.2f× raw", ratio), target: "≤ 1.25× raw", check: v.of(ok && ratio <= 1.25)})
	}
	wns, wb, wa := r.cells("VerifyWarm")
	warm, walloc := r.get("VerifyWarm", "ns/op"), r.get("VerifyWarm", "allocs/op")
	add(row{name: "verify: Canopy warm (cache hit)", ns: wns, bytes: wb, allocs: wa,
		ratio:  fmt.Sprintf("%.4f× raw", warm/r.get("ColdVsRaw/EdDSA", "raw-ns/op")),
		target: "≤ 1 µs, ≤ 2 allocs", check: v.of(warm > 0 && warm <= 1000 && walloc <= 2)})

	for _, fw := range []string{"nethttp", "echo"} {
		label := map[string]string{"nethttp": "net/http", "echo": "echo"}[fw]
		none := r.get("Middleware/"+fw+"/none", "ns/op")
		for _, mode := range []string{"none", "cold", "warm"} {
			name := "Middleware/" + fw + "/" + mode
			ns, b, a := r.cells(name)
			x := row{name: fmt.Sprintf("%s middleware, trivial handler: %s", label, mode), ns: ns, bytes: b, allocs: a}
			if mode != "none" {
				x.ratio = "+" + dur(r.get(name, "ns/op")-none) + " per request"
			} else {
				x.name = label + ", trivial handler, no auth"
			}
			add(x)
		}
	}
	for _, alg := range []string{"EdDSA", "ES256"} {
		ns, b, a := r.cells("Mint/" + alg)
		add(row{name: "mint an access token (" + alg + ", claims + sign)", ns: ns, bytes: b, allocs: a})
	}
	for _, size := range []string{"10k", "1M"} {
		ns, b, a := r.cells("RotateScale/sessions=" + size)
		x := row{name: "refresh rotation, SQLite FULL sync, " + size + " sessions", ns: ns, bytes: b, allocs: a,
			ratio: fmt.Sprintf("%.0f/s", r.get("RotateScale/sessions="+size, "rotations/s"))}
		if size == "1M" {
			ratio, ok := r.median("RotateScale/paired", "1M/10k")
			x.ratio += fmt.Sprintf(", %.2f× 10k (p50 %.2f×)", ratio, r.get("RotateScale/paired", "1M/10k-p50"))
			x.target, x.check = "≤ 1.3× 10k", v.of(ok && ratio <= 1.3)
		}
		add(x)
	}
	ns, b, a := r.cells("VerifyOWASP")
	add(row{name: "login: argon2id verify (OWASP m=19 MiB t=2 p=1)", ns: ns, bytes: b, allocs: a})
	for _, size := range []string{"1k", "10k"} {
		full, inc := "RevocationPoll/window="+size+"/full", "RevocationPoll/window="+size+"/incremental-empty"
		ns, b, a := r.cells(full)
		add(row{name: "revocation poll, whole window, " + size + " entries (SQLite)", ns: ns, bytes: b, allocs: a})
		ns, b, a = r.cells(inc)
		x := row{name: "revocation poll, ?after= head, nothing new, " + size + " entries", ns: ns, bytes: b, allocs: a}
		if fi, ii := r.get(full, "ns/op"), r.get(inc, "ns/op"); ii > 0 {
			x.ratio = fmt.Sprintf("%.4f× whole", ii/fi)
		}
		if size == "10k" {
			small, big := r.get("RevocationPoll/window=1k/incremental-empty", "ns/op"), r.get(inc, "ns/op")
			x.ratio += fmt.Sprintf(", %.2f× 1k", big/small)
			x.target, x.check = "O(1): ≤ 2× 1k", v.of(small > 0 && big <= 2*small)
		}
		add(x)
	}

	fmt.Fprintf(w, "Canopy benchmarks: medians of %d rounds; ratios measured in the same process\n\n", count)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tns/op\tB/op\tallocs/op\tratio\ttarget\tresult\t\n", nameWidth, "benchmark")
	for _, x := range rows {
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", nameWidth, x.name, x.ns, x.bytes, x.allocs, dash(x.ratio), dash(x.target), dash(x.check))
	}
	_ = tw.Flush()

	fmt.Fprintf(w, "\n200 concurrent logins against a real `issuer serve` (hash concurrency 4):\n")
	if rss, ok := r.median("LoginBurst", "peak-RSS-MiB"); ok {
		fmt.Fprintf(w, "  peak RSS %.0f MiB (target ≤ 256 MiB: %s); %0.f signed in, %.0f deliberate 503s; %.1f logins/s\n",
			rss, v.of(rss <= 256), r.get("LoginBurst", "ok/burst"), r.get("LoginBurst", "503s/burst"), r.get("LoginBurst", "logins/s"))
	} else {
		fmt.Fprintf(w, "  did not run (%s)\n", v.of(false))
	}
	fmt.Fprintf(w, "\nRevocation stream against a real `issuer serve` on loopback:\n")
	// The targets' figures: real relying processes, enforcement seen over HTTP.
	for _, p := range []struct{ name, what string }{
		{"SignOutPropagationRelying", "one issuer (SQLite)"},
		{"SignOutPropagationTwoInstances", "two issuer instances (PostgreSQL), sign-outs alternated"},
	} {
		if p99, ok := r.median(p.name, "p99-ms"); ok {
			fmt.Fprintf(w, "  sign-out to 20 relying processes (refused over HTTP), 100 sign-outs, %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 ≤ 1 s: %s)\n",
				p.what, r.get(p.name, "p50-ms"), p99, r.get(p.name, "max-ms"), v.of(p99 <= 1000))
			if a, ok := r.median(p.name, "p99-via-A-ms"); ok {
				fmt.Fprintf(w, "    p99 of the sign-outs through instance A %.1f ms, through B %.1f ms\n", a, r.get(p.name, "p99-via-B-ms"))
			}
		} else {
			fmt.Fprintf(w, "  propagation, %s, did not run (%s)\n", p.what, v.of(false))
		}
	}
	if p99, ok := r.median("SignOutPropagation", "p99-ms"); ok {
		fmt.Fprintf(w, "  sign-out to 20 pkg/sso clients in one process (their callbacks), 100 sign-outs: p50 %.1f ms, p99 %.1f ms\n",
			r.get("SignOutPropagation", "p50-ms"), p99)
	}
	if rss, ok := r.median("StreamSubscribers", "extra-RSS-MiB"); ok {
		fmt.Fprintf(w, "  1,000 open streams (bare SSE readers): +%.1f MiB RSS, %.1f KiB a stream (target < 64 MiB: %s)\n",
			rss, r.get("StreamSubscribers", "KiB/stream"), v.of(rss < 64))
	} else {
		fmt.Fprintf(w, "  subscriber memory did not run (%s)\n", v.of(false))
	}
	if rss, ok := r.median("StreamRestart/restart", "extra-RSS-MiB"); ok {
		fmt.Fprintf(w, "  1,000 pkg/sso subscribers: +%.1f MiB RSS (target < 64 MiB: %s)\n", rss, v.of(rss < 64))
	}
	for _, rs := range []struct{ name, what string }{
		{"StreamRestart/restart", "issuer restart"}, {"StreamRestart/down=20s", "issuer back after 20 s down"},
	} {
		back, ok := r.median(rs.name, "all-back-s")
		if !ok {
			fmt.Fprintf(w, "  %s under 1,000 subscribers did not run (%s)\n", rs.what, v.of(false))
			continue
		}
		fmt.Fprintf(w, "  %s under 1,000 subscribers (down %.2f s, 3 revocations meanwhile): every stream back %.2f s after the new process started (target ≤ 10 s: %s), every subscriber holding the 3 at %.2f s\n",
			rs.what, r.get(rs.name, "down-s"), back, v.of(back <= 10), r.get(rs.name, "all-caught-up-s"))
		fmt.Fprintf(w, "    reconnections: first %.2f s, median %.2f s, last %.2f s; busiest 100 ms: %.0f streams back, %.0f attempts; %.1f attempts a subscriber\n",
			r.get(rs.name, "first-back-s"), r.get(rs.name, "median-back-s"), r.get(rs.name, "last-back-s"),
			r.get(rs.name, "max-back-per-100ms"), r.get(rs.name, "max-tries-per-100ms"), r.get(rs.name, "tries/sub"))
	}
	if p50, ok := r.median("CLIRevocationToStream", "p50-ms"); ok {
		fmt.Fprintf(w, "  revocation by another process (issuer user disable, SQLite) to a stream: p50 %.0f ms, max %.0f ms; idle issuer %.0f ms CPU a second\n",
			p50, r.get("CLIRevocationToStream", "max-ms"), r.get("CLIRevocationToStream", "idle-cpu-ms/s"))
	}
	if m, ok := r.median("RevocationSetMemory", "B/entry"); ok {
		fmt.Fprintf(w, "  relying revocation set: %.0f B a revoked session (heap after GC, 100k entries)\n", m)
	}
	if load != nil {
		printLoad(w, load, &v)
	}
	return v.missed
}

func printLoad(w io.Writer, l *loadReport, v *verdict) {
	fmt.Fprintf(w, "\nLoad test over loopback (%d sessions seeded in %.0f s; disk fdatasync p50 %s):\n\n",
		l.SeedSessions, l.SeedSeconds, dur(float64(l.FsyncP50)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tclients\treq/s\tp50\tp99\terrors\ttarget\tresult\t\n", nameWidth, "scenario")
	for _, s := range l.Scenarios {
		target, check := "", ""
		switch {
		case strings.HasSuffix(s.Name, "group commit"):
			target, check = "≥ 5000/s, p99 ≤ 50 ms, 0 errors", v.of(s.PerSec >= 5000 && s.P99 <= int64(50*time.Millisecond) && s.Errors == 0)
		case strings.HasPrefix(s.Name, "POST /refresh"):
			target, check = "0 errors", v.of(s.Errors == 0)
		case s.Errors > 0:
			check = v.of(false)
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%.0f\t%s\t%s\t%d\t%s\t%s\t\n", nameWidth, s.Name, s.Conc, s.PerSec,
			dur(float64(s.P50)), dur(float64(s.P99)), s.Errors, dash(target), dash(check))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "  middleware ÷ no auth, req/s: %.3f (median of paired rounds; totals %.3f) (target ≥ 0.90: %s)\n",
		l.AuthOverBare, l.AuthOverBareTotal, v.of(l.AuthOverBare >= 0.9))
	fmt.Fprintf(w, "  refresh on SQLite, group commit ÷ fsync each, rotations/s: %.2f (median of paired rounds; totals %.2f) (target ≥ 2.5: %s)\n",
		l.GroupOverEach, l.GroupOverEachTotal, v.of(l.GroupOverEach >= 2.5))
	fmt.Fprintf(w, "  refresh on PostgreSQL, 2 instances ÷ 1, rotations/s: %.2f (median of paired rounds) (target ≥ 0.95, not slower: %s)\n",
		l.PGTwoOverOne, v.of(l.PGTwoOverOne >= 0.95))
	for _, s := range l.Scenarios {
		if s.FirstErr != "" {
			fmt.Fprintf(w, "  %s: first error: %s\n", s.Name, s.FirstErr)
		}
	}
}

func printPeers(w io.Writer, r results, count int) {
	fmt.Fprintf(w, "Verifying one Canopy access token per algorithm (JWKS over HTTP): medians of %d rounds;\n", count)
	fmt.Fprintf(w, "each verifier alternates with the bare signature check in one loop, so × raw is measured under one load\n")
	var v verdict
	for _, alg := range []struct{ name, floor string }{
		{"EdDSA", "crypto/ed25519.Verify (floor)"},
		{"ES256", "crypto/ecdsa.Verify + SHA-256 (floor)"},
	} {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%-*s\tns/op\tB/op\tallocs/op\t× raw\t\n", nameWidth, alg.name+" verifier")
		best := math.Inf(1) // the lowest peer ratio
		for _, p := range []struct{ name, label string }{
			{"raw", alg.floor},
			{"canopy-cold", "Canopy sso.Verifier, cache off"},
			{"canopy-warm", "Canopy sso.Verifier, cache hit"},
			{"go-oidc", "coreos/go-oidc v3 IDTokenVerifier"},
			{"jwx", "lestrrat-go/jwx v3 jwt.Parse + jwk.Cache"},
			{"golang-jwt+keyfunc", "golang-jwt v5 + MicahParks/keyfunc v3"},
		} {
			// Each iteration runs the bare check too: its allocations (half
			// of the raw row's, which runs it twice) are taken off, so B/op
			// and allocs/op are the verifier's own.
			name, floor := "Peers/"+alg.name+"/"+p.name, "Peers/"+alg.name+"/raw"
			b := fmt.Sprintf("%.0f", r.get(name, "B/op")-r.get(floor, "B/op")/2)
			a := fmt.Sprintf("%.0f", r.get(name, "allocs/op")-r.get(floor, "allocs/op")/2)
			x := r.get(name, "×raw")
			if p.name != "raw" && !strings.HasPrefix(p.name, "canopy") {
				best = min(best, x)
			}
			fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%.3f\t\n", nameWidth, p.label, dur(r.get(name, "peer-ns/op")), b, a, x)
		}
		_ = tw.Flush()
		cold := r.get("Peers/"+alg.name+"/canopy-cold", "×raw")
		fmt.Fprintf(w, "  Canopy cold %.3f× raw, the best peer %.3f× (target: below every peer: %s; aim ≤ 1.15×: %s)\n",
			cold, best, v.of(cold < best), v.of(cold <= 1.15))
	}
}

// nameWidth left-aligns the first column (tabwriter aligns the rest right).
const nameWidth = 52

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
