package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store/pgtest"
	"github.com/canopy-sso/canopy/pkg/localhost"
)

// Sign-out propagation to real relying services, as the target
// states it: 20 `relying` processes with their default settings (stream on,
// polls 10 s apart), 100 sign-outs, each timed from the moment the sign-out
// is posted until every one of the 20 refuses the signed-out token over
// HTTP. Enforcement is observed from outside, as a user would meet it: each
// service is asked for its page with the token every probeEvery, so a
// figure is late by at most that much.
const (
	propagationServices = 20
	propagationSignOuts = 100
	probeEvery          = 2 * time.Millisecond
)

// BenchmarkSignOutPropagationRelying: one issuer (SQLite) and 20 relying
// processes.
func BenchmarkSignOutPropagationRelying(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := benchIssuer(b)
		if out, err := s.issuerCmd(b, alicePW+"\n", "user", "add", "alice"); err != nil {
			b.Fatalf("user add: %v\n%s", err, out)
		}
		p := &propagation{issuerURL: s.issuerURL, instances: []int{s.issuerPort}}
		p.run(b)
		s.issuer.Stop()
	}
}

// BenchmarkSignOutPropagationTwoInstances: two issuer instances on one
// PostgreSQL database, 10 relying processes following each (their issuer
// traffic goes to instance B through an HTTP proxy setting, as a load
// balancer would send it; the instances' stream gauges confirm the
// spread), and the sign-outs posted alternately to instance A and B, so
// half of every sign-out's services learn it through LISTEN/NOTIFY.
func BenchmarkSignOutPropagationTwoInstances(b *testing.B) {
	cluster, err := pgtest.StartCluster()
	if err != nil {
		pgtest.SkipOrFail(b, err)
	}
	b.Cleanup(func() { _ = cluster.Close() }) // after each database's own cleanup
	for range b.N {
		b.StopTimer()
		dsn := pgtest.Database(b, cluster)
		dir := b.TempDir()
		ports := []int{freePort(b), freePort(b)}
		issuerURL := fmt.Sprintf("http://domain.localhost:%d", ports[0]) // both sign as A's URL
		keys := filepath.Join(dir, "keys")
		p := &propagation{issuerURL: issuerURL, instances: ports}
		var inst []*proc
		for _, port := range ports {
			mport := freePort(b)
			p.metrics = append(p.metrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
			pr := start(b, "issuer", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--url", issuerURL,
				"--db", dsn, "--keys", keys, "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport))
			waitHTTP(b, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), pr)
			inst = append(inst, pr)
		}
		if out, err := issuerCLI(b, alicePW+"\n", "user", "add", "alice", "--db", dsn, "--keys", keys, "--url", issuerURL); err != nil {
			b.Fatalf("user add: %v\n%s", err, out)
		}
		p.run(b)
		for _, pr := range inst {
			pr.Stop()
		}
	}
}

// propagation is one run of the measurement against running issuer
// instances (ports on loopback, all answering as issuerURL).
type propagation struct {
	issuerURL string
	instances []int
	metrics   []string // each instance's /metrics, to check the spread
}

func (p *propagation) run(b *testing.B) {
	b.Helper()
	// The relying services, spread over the instances in turn.
	svcURLs := make([]string, propagationServices)
	var svcMetrics []string
	for i := range propagationServices {
		port, mport := freePort(b), freePort(b)
		svcMetrics = append(svcMetrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
		var env []string
		if via := p.instances[i%len(p.instances)]; via != p.instances[0] {
			proxy := fmt.Sprintf("http://127.0.0.1:%d", via)
			env = []string{"HTTP_PROXY=" + proxy, "http_proxy=" + proxy, "NO_PROXY=", "no_proxy="}
		}
		pr := startEnv(b, env, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", p.issuerURL,
			"--host", "app.domain.localhost", "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport))
		waitHTTP(b, fmt.Sprintf("http://127.0.0.1:%d/.canopy/readyz", port), pr)
		svcURLs[i] = fmt.Sprintf("http://app.domain.localhost:%d/", port)
	}
	perInstance := propagationServices / len(p.instances)
	for i, m := range p.metrics {
		waitFor(b, 20*time.Second, fmt.Sprintf("%d streams on instance %d", perInstance, i), func() bool {
			return gauge(b, m, "canopy_issuer_revocation_streams") == float64(perInstance)
		})
	}
	for i, m := range svcMetrics {
		waitFor(b, 20*time.Second, fmt.Sprintf("service %d's revocation stream", i), func() bool {
			return gauge(b, m, "canopy_relying_revocation_stream_connected") == 1
		})
	}

	// The sessions, signed in before the clock starts.
	type session struct {
		b     *browser
		token string
	}
	sessions := make([]session, propagationSignOuts)
	signer := &stack{issuerURL: p.issuerURL, domain: "domain.localhost"}
	for i := range sessions {
		br := newBrowser(b)
		if r := signer.signIn(b, br, "alice", alicePW, p.issuerURL+"/"); r.status != http.StatusSeeOther {
			b.Fatalf("sign-in: %d %s", r.status, r.body)
		}
		sessions[i] = session{br, br.cookie(p.issuerURL, "canopy").Value}
	}
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: localhost.DialContext(nil), MaxIdleConnsPerHost: 4, DisableCompression: true,
	}}
	admitted := func(u, token string) bool {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept", "application/json")
		req.AddCookie(&http.Cookie{Name: "canopy", Value: token})
		resp, err := probe.Do(req)
		if err != nil {
			b.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	var lat []time.Duration
	perVia := make([][]time.Duration, len(p.instances))
	for n, se := range sessions {
		for _, u := range svcURLs {
			if !admitted(u, se.token) {
				b.Fatalf("%s refuses a fresh session's token before its sign-out", u)
			}
		}
		// Post the sign-out to instance n mod len(instances): the same
		// URL and cookies, dialled to that instance.
		via := p.instances[n%len(p.instances)]
		se.b.client.Transport = dialOnly(via)
		page := se.b.navigate(p.issuerURL + "/logout")
		form := url.Values{"csrf_token": {csrf(b, page.body)}}
		b.StartTimer()
		start := time.Now()
		if r := se.b.post(p.issuerURL+"/logout", form, p.issuerURL); r.status != http.StatusSeeOther {
			b.Fatalf("logout through instance %d: %d", n%len(p.instances), r.status)
		}
		refused := make([]time.Time, len(svcURLs))
		var wg sync.WaitGroup
		for i, u := range svcURLs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := start.Add(10 * time.Second)
				for admitted(u, se.token) {
					if time.Now().After(deadline) {
						b.Errorf("%s still admits session %d 10 s after its sign-out", u, n)
						return
					}
					time.Sleep(probeEvery)
				}
				refused[i] = time.Now()
			}()
		}
		wg.Wait()
		b.StopTimer()
		if b.Failed() {
			b.FailNow()
		}
		d := slices.MaxFunc(refused, time.Time.Compare).Sub(start)
		lat = append(lat, d)
		perVia[n%len(p.instances)] = append(perVia[n%len(p.instances)], d)
	}
	b.ReportMetric(quantile(lat, 50), "p50-ms")
	b.ReportMetric(quantile(lat, 99), "p99-ms")
	b.ReportMetric(quantile(lat, 100), "max-ms")
	if len(p.instances) > 1 {
		b.ReportMetric(quantile(perVia[0], 99), "p99-via-A-ms")
		b.ReportMetric(quantile(perVia[1], 99), "p99-via-B-ms")
	}
}

// quantile returns the q-th percentile of ds (nearest rank: of 100, p99 is
// the 99th smallest) in milliseconds.
func quantile(ds []time.Duration, q int) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := max((len(s)*q+99)/100-1, 0)
	return float64(s[i].Microseconds()) / 1000
}

// dialOnly is a transport that sends every request to 127.0.0.1:port,
// whatever host its URL names (one instance behind a shared URL).
func dialOnly(port int) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
	}}
}

// gauge reads one unlabelled metric from a Prometheus text page (-1: absent).
func gauge(t testing.TB, metricsURL, name string) float64 {
	t.Helper()
	resp, err := http.Get(metricsURL)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// issuerCLI runs an issuer subcommand with its arguments as given.
func issuerCLI(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "issuer"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
