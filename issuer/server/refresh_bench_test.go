package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
	"github.com/canopy-sso/canopy/issuer/throttle"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/username"
)

// refreshClients is the concurrency of BenchmarkRefreshHTTP, as in the load
// test: each client follows its own session's cookie chain.
const refreshClients = 64

// BenchmarkRefreshHTTP serves POST /refresh over loopback HTTP from a real
// Server on a real SQLite file (durable commits) to 64 concurrent clients. It
// is the in-process twin of the load test's refresh scenario, where
// -cpuprofile and -blockprofile can see inside the issuer; the table size is
// BenchmarkRotateScale's business.
func BenchmarkRefreshHTTP(b *testing.B) {
	srv, st := benchServer(b)
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	tokens := make([]string, refreshClients)
	now := time.Now()
	for i := range tokens {
		tokens[i] = fmt.Sprintf("bench-refresh-token-%02d-%d", i, now.UnixNano())
		sess := store.Session{ID: fmt.Sprintf("bench-session-%02d", i), UserID: "u1", CreatedAt: now, AuthTime: now,
			ExpiresAt: now.Add(time.Hour), LastUsedAt: now, AccessUntil: now}
		sum := sha256.Sum256([]byte(tokens[i]))
		if err := st.CreateSession(b.Context(), sess, hex.EncodeToString(sum[:])); err != nil {
			b.Fatal(err)
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: refreshClients}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	var next atomic.Int64
	b.SetParallelism((refreshClients + 1) / 2) // × GOMAXPROCS (2 here) goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % refreshClients
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/refresh", nil)
			req.Header.Set("Cookie", srv.cookies.Refresh+"="+tokens[i])
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Errorf("POST /refresh: %s", resp.Status)
				return
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == srv.cookies.Refresh {
					tokens[i] = ck.Value
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
}

// benchServer is a Server as `issuer serve` wires it, with user u1.
func benchServer(b *testing.B) (*Server, *sqlite.Store) {
	dir := b.TempDir()
	cfg := config.Default()
	cfg.DB, cfg.Keys = filepath.Join(dir, "issuer.db"), filepath.Join(dir, "keys")
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(cfg.DB, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	kd, err := keys.Open(cfg.Keys, keys.Options{Alg: cfg.Alg, JWKSMaxAge: cfg.JWKSMaxAge, AccessTTL: cfg.AccessTTL})
	if err != nil {
		b.Fatal(err)
	}
	if err := kd.Ensure(); err != nil {
		b.Fatal(err)
	}
	hasher, err := password.NewHasher(password.OWASP, 4)
	if err != nil {
		b.Fatal(err)
	}
	names, err := username.LoadRules("")
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateUser(context.Background(), store.User{ID: "u1", Username: "alice", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	srv, err := New(context.Background(), Deps{Config: cfg, Store: st, Keys: kd, Hasher: hasher,
		Throttle: throttle.New(throttle.DefaultConfig()), Names: names, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	return srv, st
}
