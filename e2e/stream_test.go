package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store/pgtest"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// streamWatch is a pkg/sso Client that polls only once an hour, so that a
// revocation reaching it in seconds came through the stream.
type streamWatch struct {
	client   *sso.Client
	revoked  chan sso.Revocations
	connects atomic.Int32
	up       atomic.Bool
}

// Verified, KeySetFetched, RevocationPolled: the Observer it must be.
func (w *streamWatch) Verified(string, bool)   {}
func (w *streamWatch) KeySetFetched(string)    {}
func (w *streamWatch) RevocationPolled(string) {}
func (w *streamWatch) RevocationStreamConnected(up bool) {
	if up {
		w.connects.Add(1)
	}
	w.up.Store(up)
}

// watchStream starts a Client of issuerURL; hc (nil: the default) talks to it.
func watchStream(t *testing.T, issuerURL string, hc *http.Client) *streamWatch {
	t.Helper()
	w := &streamWatch{revoked: make(chan sso.Revocations, 100)}
	c, err := sso.New(t.Context(), sso.Options{Issuer: issuerURL, RevocationPoll: time.Hour, HTTPClient: hc,
		Logger: slog.New(slog.DiscardHandler), Observer: w})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.OnRevoke(func(r sso.Revocations) { w.revoked <- r })
	w.client = c
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the revocation stream to connect", w.up.Load)
	return w
}

// waitRevoked waits until the Client learns that claims are revoked.
func (w *streamWatch) waitRevoked(t *testing.T, claims *sso.Claims, within time.Duration, what string) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case r := <-w.revoked:
			if r.Matches(claims) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: the revocation of session %s did not arrive within %v (polls are an hour apart: only the stream delivers)",
				what, claims.SessionID, within)
		}
	}
}

// session signs name in with a new browser and returns it with its claims.
func (s *stack) session(t *testing.T, w *streamWatch, name string) (*browser, *sso.Claims) {
	t.Helper()
	b := newBrowser(t)
	if r := s.signIn(t, b, name, alicePW, s.issuerURL+"/"); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", r.status)
	}
	ck := b.cookie(s.issuerURL, "canopy")
	if ck == nil {
		t.Fatal("no access cookie after sign-in")
	}
	claims, err := w.client.Verify(t.Context(), ck.Value)
	if err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	return b, claims
}

// logout signs b out through the issuer at base.
func logout(t testing.TB, b *browser, base string) {
	t.Helper()
	page := b.navigate(base + "/logout")
	if r := b.post(base+"/logout", url.Values{"csrf_token": {csrf(t, page.body)}}, base); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
}

// TestStreamIssuerRestart: a sign-out reaches a subscriber through the
// stream; the issuer stops (its streams end with the graceful shutdown, in
// well under its timeout), a revocation is committed while it is down (by
// the CLI), and once it is back the subscriber resumes from its cursor and
// gets that revocation too.
func TestStreamIssuerRestart(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "alice"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	w := watchStream(t, s.issuerURL, nil)
	b1, c1 := s.session(t, w, "alice")
	_, c2 := s.session(t, w, "alice")
	logout(t, b1, s.issuerURL)
	w.waitRevoked(t, c1, 5*time.Second, "sign-out")

	stopped := time.Now()
	s.issuer.Stop()
	if d := time.Since(stopped); d > 5*time.Second {
		t.Errorf("graceful shutdown with an open stream took %v: stream handlers held it", d)
	}
	waitFor(t, 5*time.Second, "the client to see the stream end", func() bool { return !w.up.Load() })
	if out, err := s.issuerCmd(t, "", "user", "disable", "alice"); err != nil {
		t.Fatalf("user disable: %v\n%s", err, out)
	}
	s.startIssuer(t)
	w.waitRevoked(t, c2, 15*time.Second, "revocation committed while the issuer was down")
	if !w.client.RevokedClaims(c2) {
		t.Error("the set does not hold the revocation the stream delivered")
	}
}

// TestStreamTwoInstancesPostgres: two issuer instances on one PostgreSQL
// database; a subscriber of instance B learns of a sign-out made through
// instance A at once (LISTEN/NOTIFY: B's own recheck is 30 s apart).
func TestStreamTwoInstancesPostgres(t *testing.T) {
	t.Parallel()
	cluster, err := pgtest.StartCluster()
	if err != nil {
		pgtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	dsn := pgtest.Database(t, cluster)
	s := &stack{dir: t.TempDir(), domain: "domain.localhost"}
	portA, portB := freePort(t), freePort(t)
	s.issuerURL = fmt.Sprintf("http://%s:%d", s.domain, portA) // both sign as A's URL
	keys := filepath.Join(s.dir, "keys")
	var inst [2]*proc
	for i, port := range []int{portA, portB} {
		inst[i] = start(t, "issuer", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--url", s.issuerURL,
			"--db", dsn, "--keys", keys)
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), inst[i])
	}
	s.issuer = inst[0]
	cmd := exec.Command(filepath.Join(binDir, "issuer"), "user", "add", "alice", "--db", dsn, "--keys", keys, "--url", s.issuerURL)
	cmd.Stdin = strings.NewReader(alicePW + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	// The subscriber reaches only instance B, whatever host a URL names.
	toB := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", portB))
		},
	}}
	w := watchStream(t, s.issuerURL, toB)
	for i := range 3 {
		b, c := s.session(t, w, "alice") // through A
		logout(t, b, s.issuerURL)
		w.waitRevoked(t, c, 5*time.Second, fmt.Sprintf("sign-out %d through instance A, subscriber on B", i))
	}
}
