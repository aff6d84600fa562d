package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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
func watchStream(t testing.TB, issuerURL string, hc *http.Client) *streamWatch {
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
func (w *streamWatch) waitRevoked(t testing.TB, claims *sso.Claims, within time.Duration, what string) {
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
func (s *stack) session(t testing.TB, w *streamWatch, name string) (*browser, *sso.Claims) {
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
// database behind a load balancer. A subscriber on instance B learns of
// sign-outs made through instance A at once (LISTEN/NOTIFY: B's own recheck
// is 30 s apart). Then B dies (SIGKILL: the stream is lost, not closed), a
// sign-out commits through A while the subscriber has no stream, the
// balancer moves to A, and the subscriber resumes there from the cursor B
// gave it and gets the sign-out: the database is the source of truth.
func TestStreamTwoInstancesPostgres(t *testing.T) {
	t.Parallel()
	cluster, err := pgtest.StartCluster()
	if err != nil {
		pgtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	p := newPGStack(t, cluster)
	if out, err := issuerCLI(t, alicePW+"\n", "user", "add", "alice", "--db", p.dsn, "--keys", p.keys, "--url", p.issuerURL); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	p.proxy.use(1)
	w := watchStream(t, p.issuerURL, nil) // through the balancer: its stream is on B
	viaA := func(b *browser) *browser {
		b.client.Transport = dialOnly(p.port[0])
		return b
	}
	for i := range 3 {
		b, c := p.session(t, w, "alice")
		logout(t, viaA(b), p.issuerURL)
		w.waitRevoked(t, c, 5*time.Second, fmt.Sprintf("sign-out %d through instance A, subscriber on B", i))
	}

	// B dies; until the balancer moves to A the subscriber's reconnections
	// fail (502), and a sign-out commits through A meanwhile.
	b, c := p.session(t, w, "alice")
	p.inst[1].Kill()
	waitFor(t, 10*time.Second, "the subscriber to lose its stream", func() bool { return !w.up.Load() })
	logout(t, viaA(b), p.issuerURL)
	time.Sleep(500 * time.Millisecond)
	if w.client.RevokedClaims(c) {
		t.Fatal("the sign-out arrived with no stream and no poll")
	}
	p.proxy.use(0)
	w.waitRevoked(t, c, 15*time.Second, "sign-out through A while the subscriber's stream on B was lost")
	waitFor(t, 15*time.Second, "the stream to resume on instance A", func() bool { return w.up.Load() && w.connects.Load() >= 2 })
	b, c = p.session(t, w, "alice")
	logout(t, viaA(b), p.issuerURL)
	w.waitRevoked(t, c, 5*time.Second, "sign-out on the stream resumed on A")
}
