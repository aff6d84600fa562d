package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// BenchmarkSignOutPropagation: 20 relying services (pkg/sso Clients with
// their default settings, polls an hour apart so only the stream counts)
// follow one issuer process on loopback; 100 sign-outs, each timed from
// the moment the sign-out is posted until the last of the 20 holds it.
func BenchmarkSignOutPropagation(b *testing.B) {
	const clients, signOuts = 20, 100
	for range b.N {
		b.StopTimer()
		s := benchIssuer(b)
		if out, err := s.issuerCmd(b, alicePW+"\n", "user", "add", "alice"); err != nil {
			b.Fatalf("user add: %v\n%s", err, out)
		}
		var mu sync.Mutex
		arrived := map[string][]time.Time{} // sid → when each client had it
		var subs []*sso.Client
		for range clients {
			c, err := sso.New(b.Context(), sso.Options{Issuer: s.issuerURL, RevocationPoll: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			c.OnRevoke(func(r sso.Revocations) {
				now := time.Now()
				mu.Lock()
				for _, sid := range r.SIDs {
					arrived[sid] = append(arrived[sid], now)
				}
				mu.Unlock()
			})
			subs = append(subs, c)
		}
		for _, c := range subs {
			ctx, cancel := context.WithTimeout(b.Context(), 20*time.Second)
			if err := c.Wait(ctx); err != nil {
				b.Fatal(err)
			}
			cancel()
			waitFor(b, 10*time.Second, "streams to connect", c.RevocationStreamConnected)
		}
		type session struct {
			b   *browser
			sid string
		}
		sessions := make([]session, signOuts)
		for i := range sessions {
			br := newBrowser(b)
			if r := s.signIn(b, br, "alice", alicePW, s.issuerURL+"/"); r.status != http.StatusSeeOther {
				b.Fatalf("sign-in: %d", r.status)
			}
			sessions[i] = session{br, tokenSID(b, br.cookie(s.issuerURL, "canopy").Value)}
		}
		var lat []time.Duration
		b.StartTimer()
		for _, se := range sessions {
			page := se.b.navigate(s.issuerURL + "/logout")
			form := map[string][]string{"csrf_token": {csrf(b, page.body)}}
			start := time.Now()
			if r := se.b.post(s.issuerURL+"/logout", form, s.issuerURL); r.status != http.StatusSeeOther {
				b.Fatalf("logout: %d", r.status)
			}
			waitFor(b, 10*time.Second, "all clients to hold the sign-out", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(arrived[se.sid]) >= clients
			})
			mu.Lock()
			lat = append(lat, slices.MaxFunc(arrived[se.sid], time.Time.Compare).Sub(start))
			mu.Unlock()
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		for _, c := range subs {
			_ = c.Close()
		}
		s.issuer.Stop()
	}
}

// BenchmarkStreamSubscribers: the resident memory one issuer process adds
// for 1,000 open revocation streams (each from its own client address,
// through --trusted-proxies, so the per-address bound does not refuse them).
func BenchmarkStreamSubscribers(b *testing.B) {
	const n = 1000
	for range b.N {
		b.StopTimer()
		s := benchIssuer(b, "--trusted-proxies", "127.0.0.1/32")
		// Warm the process up with a few streams, so the baseline holds the
		// code paths and buffers every stream shares.
		tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 0}
		client := &http.Client{Transport: tr}
		open := func(i int) *http.Response {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", s.issuerPort, wire.PathRevocationStream), nil)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("stream %d: %v %v", i, resp.StatusCode, err)
			}
			if _, err := wire.NewStreamReader(resp.Body).Next(); err != nil {
				b.Fatalf("stream %d: %v", i, err)
			}
			return resp
		}
		var resps []*http.Response
		for i := range 10 {
			resps = append(resps, open(n+i))
		}
		time.Sleep(200 * time.Millisecond)
		before, err := procStatus(s.issuer.cmd.Process.Pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i := range n {
			resps = append(resps, open(i))
		}
		b.StopTimer()
		time.Sleep(200 * time.Millisecond)
		after, err := procStatus(s.issuer.cmd.Process.Pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(after-before)/(1<<20), "extra-RSS-MiB")
		b.ReportMetric(float64(after-before)/n/1024, "KiB/stream")
		for _, r := range resps {
			r.Body.Close()
		}
		s.issuer.Stop()
	}
}

// benchIssuer starts one issuer process on SQLite in a fresh directory,
// with extra serve flags, for the stream benchmarks.
func benchIssuer(b *testing.B, extra ...string) *stack {
	b.Helper()
	s := &stack{dir: b.TempDir(), domain: "domain.localhost"}
	s.issuerPort = freePort(b)
	s.issuerURL = fmt.Sprintf("http://%s:%d", s.domain, s.issuerPort)
	s.issuerArgs = append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", s.issuerPort), "--url", s.issuerURL,
		"--db", filepath.Join(s.dir, "issuer.db"), "--keys", filepath.Join(s.dir, "keys")}, extra...)
	s.startIssuer(b)
	return s
}
