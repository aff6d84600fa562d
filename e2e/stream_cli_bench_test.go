package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCLIRevocationToStream: on SQLite, a revocation committed by
// another process (`issuer user disable`, which writes the database
// directly) reaches a stream subscriber only when the issuer next reads
// the log. It reports the time from the CLI's exit until a pkg/sso Client
// (polls an hour apart) holds the revocation, over 20 disables, and the
// CPU the idle issuer spends meanwhile (its rechecks included).
func BenchmarkCLIRevocationToStream(b *testing.B) {
	const rounds = 20
	for range b.N {
		b.StopTimer()
		s := benchIssuer(b)
		if out, err := s.issuerCmd(b, alicePW+"\n", "user", "add", "alice"); err != nil {
			b.Fatalf("user add: %v\n%s", err, out)
		}
		w := watchStream(b, s.issuerURL, nil)

		// The idle issuer's CPU over 10 s, one stream open.
		pid := s.issuer.cmd.Process.Pid
		time.Sleep(time.Second)
		cpu0, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		cpu1, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/10, "idle-cpu-ms/s")

		var lat []time.Duration
		for i := range rounds {
			if i > 0 {
				if out, err := s.issuerCmd(b, "", "user", "enable", "alice"); err != nil {
					b.Fatalf("user enable: %v\n%s", err, out)
				}
			}
			_, c := s.session(b, w, "alice") // a disable revokes live sessions only
			// A new second, so this disable's entry differs from the last
			// one's (whole seconds), at a different point of the issuer's
			// recheck period each time.
			time.Sleep(time.Second + time.Duration(i%7)*150*time.Millisecond)
			b.StartTimer()
			if out, err := s.issuerCmd(b, "", "user", "disable", "alice"); err != nil {
				b.Fatalf("user disable: %v\n%s", err, out)
			}
			done := time.Now()
			deadline := time.After(10 * time.Second)
		wait:
			for {
				select {
				case r := <-w.revoked:
					if r.Matches(c) {
						break wait
					}
				case <-deadline:
					b.Fatalf("disable %d did not reach the stream within 10 s", i)
				}
			}
			lat = append(lat, time.Since(done))
			b.StopTimer()
		}
		b.ReportMetric(quantile(lat, 50), "p50-ms")
		b.ReportMetric(quantile(lat, 100), "max-ms")
		_ = w.client.Close()
		s.issuer.Stop()
	}
}

// procCPU returns the user and system CPU time process pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ
}
