package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// restartSubscribers is how many pkg/sso Clients BenchmarkStreamRestart runs.
const restartSubscribers = 1000

// subscriberWatch is one subscriber's Observer: when its stream came up.
type subscriberWatch struct {
	mu  sync.Mutex
	ups []time.Time
	up  atomic.Bool
}

func (w *subscriberWatch) Verified(string, bool)   {}
func (w *subscriberWatch) KeySetFetched(string)    {}
func (w *subscriberWatch) RevocationPolled(string) {}
func (w *subscriberWatch) RevocationStreamConnected(up bool) {
	if up {
		w.mu.Lock()
		w.ups = append(w.ups, time.Now())
		w.mu.Unlock()
	}
	w.up.Store(up)
}

// lastUp returns when the stream last came up (zero: never).
func (w *subscriberWatch) lastUp() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ups) == 0 {
		return time.Time{}
	}
	return w.ups[len(w.ups)-1]
}

// forwardedFor gives each subscriber its own client address, as a proxy in
// --trusted-proxies would, so the per-address bound admits 1,000 of them;
// it counts the stream requests (connection attempts) of the subscriber.
type forwardedFor struct {
	addr string
	base http.RoundTripper
	mu   sync.Mutex
	at   []time.Time // when each stream request was sent
}

func (f *forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	if r.URL.Path == wire.PathRevocationStream {
		f.mu.Lock()
		f.at = append(f.at, time.Now())
		f.mu.Unlock()
	}
	return f.base.RoundTrip(r)
}

// BenchmarkStreamRestart: 1,000 pkg/sso Clients (default backoff, polls an
// hour apart so that only the stream delivers) hold streams on one issuer
// process (SQLite); it reports the issuer's extra RSS for them. Then a
// sign-out is posted and the issuer stopped at once (graceful shutdown), two
// users are disabled by the CLI while it is down, and the issuer starts
// again on the same database and port: at once (a restart), or after 20 s
// down (an outage, long enough for every client's backoff to reach its
// cap). It reports how long after the new process was started every stream
// was back, how the reconnections were spread (first, median, last, and the
// most in any 100 ms), and how long until every subscriber held all three
// revocations: resumed from its cursor with Last-Event-ID, none missing.
func BenchmarkStreamRestart(b *testing.B) {
	for _, down := range []time.Duration{0, 20 * time.Second} {
		name := "restart"
		if down > 0 {
			name = fmt.Sprintf("down=%v", down)
		}
		b.Run(name, func(b *testing.B) { streamRestart(b, down) })
	}
}

func streamRestart(b *testing.B, minDown time.Duration) {
	for range b.N {
		b.StopTimer()
		s := benchIssuer(b, "--trusted-proxies", "127.0.0.1/32")
		for _, name := range []string{"alice", "bob", "carol"} {
			if out, err := s.issuerCmd(b, alicePW+"\n", "user", "add", name); err != nil {
				b.Fatalf("user add %s: %v\n%s", name, err, out)
			}
		}
		time.Sleep(500 * time.Millisecond)
		before, err := procStatus(s.issuer.cmd.Process.Pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}

		base := localhost.Transport()
		base.MaxIdleConnsPerHost = 64
		subs := make([]*sso.Client, restartSubscribers)
		watches := make([]*subscriberWatch, restartSubscribers)
		fwds := make([]*forwardedFor, restartSubscribers)
		opened := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 50)
		for i := range restartSubscribers {
			watches[i] = &subscriberWatch{}
			fwds[i] = &forwardedFor{addr: fmt.Sprintf("10.1.%d.%d", i>>8, i&255), base: base}
			c, err := sso.New(b.Context(), sso.Options{Issuer: s.issuerURL, RevocationPoll: time.Hour,
				HTTPClient: &http.Client{Transport: fwds[i], Timeout: 10 * time.Second},
				Logger:     slog.New(slog.DiscardHandler), Observer: watches[i]})
			if err != nil {
				b.Fatal(err)
			}
			subs[i] = c
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				ctx, cancel := context.WithTimeout(b.Context(), 60*time.Second)
				defer cancel()
				if err := c.Wait(ctx); err != nil {
					b.Errorf("subscriber %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		allUp := func() bool {
			for _, w := range watches {
				if !w.up.Load() {
					return false
				}
			}
			return true
		}
		waitFor(b, 60*time.Second, "1,000 streams to connect", allUp)
		b.Logf("1,000 subscribers connected in %v", time.Since(opened).Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond)
		after, err := procStatus(s.issuer.cmd.Process.Pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(after-before)/(1<<20), "extra-RSS-MiB")

		// Signed in after the memory is measured (a sign-in's password
		// hash grows the heap). Sessions to revoke: alice's by sign-out, bob's and carol's by
		// `user disable` while the issuer is down.
		browsers := map[string]*browser{}
		tokens := map[string]string{}
		for _, name := range []string{"alice", "bob", "carol"} {
			br := newBrowser(b)
			if r := s.signIn(b, br, name, alicePW, s.issuerURL+"/"); r.status != http.StatusSeeOther {
				b.Fatalf("sign-in %s: %d", name, r.status)
			}
			browsers[name], tokens[name] = br, br.cookie(s.issuerURL, "canopy").Value
		}
		claims := map[string]*sso.Claims{}
		for name, tok := range tokens {
			if claims[name], err = subs[0].Verify(b.Context(), tok); err != nil {
				b.Fatalf("%s's token: %v", name, err)
			}
		}

		// The restart: a sign-out just before the shutdown, two revocations
		// committed by another process while the issuer is down.
		logout(b, browsers["alice"], s.issuerURL)
		stopped := time.Now()
		s.issuer.Stop()
		for _, name := range []string{"bob", "carol"} {
			if out, err := s.issuerCmd(b, "", "user", "disable", name); err != nil {
				b.Fatalf("user disable %s: %v\n%s", name, err, out)
			}
		}
		time.Sleep(time.Until(stopped.Add(minDown)))
		b.StartTimer()
		restarted := time.Now()
		down := restarted.Sub(stopped)
		s.startIssuer(b)
		ready := time.Since(restarted)
		waitFor(b, 60*time.Second, "every stream to come back", func() bool {
			for _, w := range watches {
				if !w.up.Load() || w.lastUp().Before(restarted) {
					return false
				}
			}
			return true
		})
		back := time.Since(restarted)
		waitFor(b, 60*time.Second, "every subscriber to hold the three revocations", func() bool {
			for _, c := range subs {
				for _, cl := range claims {
					if !c.RevokedClaims(cl) {
						return false
					}
				}
			}
			return true
		})
		caughtUp := time.Since(restarted)
		b.StopTimer()

		// When each stream came back, and when each attempt to reconnect
		// was sent (after the stop: refused ones included).
		var at, tries []time.Duration
		for i, w := range watches {
			at = append(at, w.lastUp().Sub(restarted))
			fwds[i].mu.Lock()
			for _, t := range fwds[i].at {
				if t.After(stopped) {
					tries = append(tries, t.Sub(restarted))
				}
			}
			fwds[i].mu.Unlock()
		}
		slices.Sort(at)
		slices.Sort(tries)
		b.ReportMetric(down.Seconds(), "down-s")
		b.ReportMetric(ready.Seconds(), "issuer-ready-s")
		b.ReportMetric(back.Seconds(), "all-back-s")
		b.ReportMetric(caughtUp.Seconds(), "all-caught-up-s")
		b.ReportMetric(at[0].Seconds(), "first-back-s")
		b.ReportMetric(at[len(at)/2].Seconds(), "median-back-s")
		b.ReportMetric(at[len(at)-1].Seconds(), "last-back-s")
		b.ReportMetric(float64(busiest(at, 100*time.Millisecond)), "max-back-per-100ms")
		b.ReportMetric(float64(busiest(tries, 100*time.Millisecond)), "max-tries-per-100ms")
		b.ReportMetric(float64(len(tries))/restartSubscribers, "tries/sub")
		b.Logf("down %v; issuer ready after %v; streams back per 250 ms after the new process started:%s",
			down.Round(time.Millisecond), ready.Round(time.Millisecond), histogram(at, 0, 250*time.Millisecond))
		b.Logf("reconnection attempts per 250 ms from the stop:%s", histogram(tries, -down, 250*time.Millisecond))
		for _, c := range subs {
			_ = c.Close()
		}
		s.issuer.Stop()
	}
}

// busiest returns the most of sorted ds within any window of width w.
func busiest(ds []time.Duration, w time.Duration) int {
	most := 0
	for i, j := 0, 0; i < len(ds); i++ {
		for ds[i]-ds[j] >= w {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// histogram counts sorted ds in bins of width w from lo to the last.
func histogram(ds []time.Duration, lo, w time.Duration) string {
	var sb strings.Builder
	for ; len(ds) > 0 && lo <= ds[len(ds)-1]; lo += w {
		n := 0
		for _, d := range ds {
			if d >= lo && d < lo+w {
				n++
			}
		}
		fmt.Fprintf(&sb, " %d", n)
	}
	return sb.String()
}
