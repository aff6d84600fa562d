package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loginBurst is how many logins arrive at once: enough that most wait for
// one of the issuer's argon2id slots (4 × 19 MiB).
const loginBurst = 200

// burstResult counts the outcomes of one burst.
type burstResult struct {
	ok, busy, other int
	statuses        map[int]int // of the other failures
	errs            []string
	peakRSS         int64 // bytes, VmHWM of the issuer process
	wall            time.Duration
}

// BenchmarkLoginBurst starts a real `issuer serve`, adds ten users with
// `issuer user add`, and fires 200 simultaneous POST /login with the right
// password, each from its own browser (cookie jar, CSRF token, address). It reports
// the issuer's peak RSS (VmHWM from /proc), the successful logins, the
// deliberate 503s (with Retry-After) and every other outcome, which must not
// happen. One round is one fresh issuer process, since VmHWM never goes down.
func BenchmarkLoginBurst(b *testing.B) {
	var peak int64
	var ok, busy int
	var wall time.Duration
	for range b.N {
		r := loginBurstRound(b)
		peak, ok, busy, wall = max(peak, r.peakRSS), ok+r.ok, busy+r.busy, wall+r.wall
		if r.other > 0 {
			b.Errorf("%d logins failed other than by a deliberate 503: statuses %v, errors %q", r.other, r.statuses, r.errs)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(ok)/float64(b.N), "ok/burst")
	b.ReportMetric(float64(busy)/float64(b.N), "503s/burst")
	b.ReportMetric(float64(ok+busy)/wall.Seconds(), "logins/s")
}

// loginBurstRound runs one burst on a fresh issuer; only the burst is timed.
func loginBurstRound(b *testing.B) burstResult {
	b.StopTimer()
	defer b.StartTimer()
	dir := b.TempDir()
	port := freePort(b)
	issuerURL := fmt.Sprintf("http://domain.localhost:%d", port)
	common := []string{"--db", filepath.Join(dir, "issuer.db"), "--keys", filepath.Join(dir, "keys"), "--url", issuerURL}
	// Each browser comes from its own address (through a trusted proxy) and
	// the burst is spread over a few accounts, as a real burst is: the
	// throttle holds a slot per attempt in flight, so 200 at once for one
	// account from one address would be refused by design.
	p := start(b, "issuer", append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--trusted-proxies", "127.0.0.1/32"}, common...)...)
	defer p.Stop()
	waitHTTP(b, issuerURL+"/healthz", p)
	const pw, accounts = "correct horse battery", 10
	s := &stack{dir: dir, issuerURL: issuerURL}
	for a := range accounts {
		if out, err := s.issuerCmd(b, pw+"\n", "user", "add", fmt.Sprintf("user%d", a)); err != nil {
			b.Fatalf("issuer user add: %v\n%s", err, out)
		}
	}

	// Every browser fetches its form first; then all post at once.
	browsers := make([]*browser, loginBurst)
	forms := make([]url.Values, loginBurst)
	for i := range browsers {
		browsers[i] = newBrowser(b)
		page := browsers[i].navigate(issuerURL + "/login")
		if page.status != http.StatusOK {
			b.Fatalf("GET /login: %d", page.status)
		}
		forms[i] = url.Values{"username": {fmt.Sprintf("user%d", i%accounts)}, "password": {pw}, "csrf_token": {csrf(b, page.body)}}
	}
	res := burstResult{statuses: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range browsers {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, issuerURL+"/login", strings.NewReader(forms[i].Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", issuerURL)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i%250+1))
			<-gate
			resp, err := browsers[i].client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.other++
				res.errs = append(res.errs, err.Error())
			case resp.StatusCode == http.StatusSeeOther && browsers[i].cookie(issuerURL, "canopy") != nil:
				res.ok++
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				res.busy++
			default:
				res.other++
				res.statuses[resp.StatusCode]++
			}
			if resp != nil {
				_ = resp.Body.Close()
			}
		})
	}
	b.StartTimer()
	t0 := time.Now()
	close(gate)
	wg.Wait()
	res.wall = time.Since(t0)
	b.StopTimer()
	var err error
	if res.peakRSS, err = vmHWM(p.cmd.Process.Pid); err != nil {
		b.Fatal(err)
	}
	return res
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(pid int) (int64, error) { return procStatus(pid, "VmHWM") }

// procStatus reads one size field (in bytes) of /proc/PID/status.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
