package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rotationLoad refreshes several sessions in a loop and sends every fresh
// access token, and each session's first token, to a relying service,
// counting what is accepted per signing key and what is rejected.
type rotationLoad struct {
	s    *stack
	app  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	sent     int
	rejected []string
	byKID    map[string]int // accepted requests per signing key
	latest   []string       // each session's newest access token
	refresh  []string       // each session's current refresh token
	err      error
}

func (l *rotationLoad) run(refresh []string) {
	l.stop, l.byKID = make(chan struct{}), map[string]int{}
	l.latest, l.refresh = make([]string, len(refresh)), append([]string(nil), refresh...)
	for i, tok := range refresh {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := rawClient()
			first := ""
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				h, err := l.s.refreshWith(c, tok, l.app)
				next, access, ok := h.rotated(l.app)
				if err != nil || !ok {
					l.fail(fmt.Errorf("session %d: refresh: %v %d %q", i, err, h.status, h.location))
					return
				}
				tok = next
				if first == "" {
					first = access
				}
				l.mu.Lock()
				l.latest[i], l.refresh[i] = access, tok
				l.mu.Unlock()
				for _, a := range []string{access, access, access, first} {
					h, err := visit(c, l.app, a)
					if err != nil {
						l.fail(err)
						return
					}
					l.record(h, kidOf(a))
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
}

func (l *rotationLoad) record(h hit, kid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	if h.status == http.StatusOK {
		l.byKID[kid]++
		return
	}
	l.rejected = append(l.rejected, fmt.Sprintf("kid %s: %d %s", kid, h.status, h.reason))
}

func (l *rotationLoad) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

func (l *rotationLoad) accepted(kid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byKID[kid]
}

func (l *rotationLoad) halt(t *testing.T) {
	close(l.stop)
	l.wg.Wait()
	if l.err != nil {
		t.Fatal(l.err)
	}
}

// TestKeyRotationUnderLoad rotates the signing key twice while tokens flow
// through a relying service: no valid request may be refused. Then it
// revokes the key that signs: the relying service drops it, and the tokens
// it signed, at its next key refresh, and tokens of the fresh key work.
//
// The second rotation waits until the relying service has fetched the key
// set holding the new next key, which the proxy in front of the issuer
// shows. Waiting only --jwks-max-age is not enough when it is below the
// relying service's refresh floor (pkg/sso RemoteOptions.MinRefresh, 10 s).
func TestKeyRotationUnderLoad(t *testing.T) {
	t.Parallel()
	s, proxy := newProxiedStack(t, stackOptions{accessTTL: "60s", extra: []string{"--jwks-max-age", "1s"}}, jwksPass)
	app := s.appURL()
	keysCmd := func(args ...string) {
		t.Helper()
		out, err := s.issuerCmd(t, "", append(append([]string{"keys"}, args...), "--jwks-max-age", "1s")...)
		if err != nil {
			t.Fatalf("keys %v: %v\n%s", args, err, out)
		}
	}
	// rotate retries while the next key is younger than --jwks-max-age.
	rotate := func() {
		t.Helper()
		waitFor(t, 10*time.Second, "keys rotate allowed", func() bool {
			out, err := s.issuerCmd(t, "", "keys", "rotate", "--jwks-max-age", "1s")
			if err != nil && !strings.Contains(out, "--force") {
				t.Fatalf("keys rotate: %v\n%s", err, out)
			}
			return err == nil
		})
	}

	var refresh []string
	for i := range 3 {
		b := newBrowser(t)
		var r response
		if i == 0 {
			r = s.signUp(t, b, "alice", alicePW, app)
		} else {
			r = s.signIn(t, b, "alice", alicePW, app)
		}
		if r.status != http.StatusSeeOther {
			t.Fatalf("session %d: %d", i, r.status)
		}
		refresh = append(refresh, b.cookie(s.issuerURL, "canopy-refresh").Value)
	}
	waitReady(t, s.appPort, s.app)
	k0 := s.issuerKeys(t)
	active0, next1 := keyIn(k0, "active"), keyIn(k0, "next")

	l := &rotationLoad{s: s, app: app}
	l.run(refresh)
	waitFor(t, 10*time.Second, "load with the first key", func() bool { return l.accepted(active0) >= 20 })

	rotate()
	next2 := keyIn(s.issuerKeys(t), "next")
	waitFor(t, 10*time.Second, "tokens of the first rotated-in key", func() bool { return l.accepted(next1) >= 20 })
	// The relying service must know the new next key before it signs.
	waited := proxy.waitAnswer(t, 30*time.Second, "relying service fetched the new next key", func(a jwksAnswer) bool {
		return a.status == http.StatusOK && strings.Contains(a.body, next2)
	})
	t.Logf("relying service fetched next key %s after %s", next2, waited.Round(100*time.Millisecond))
	rotate()
	waitFor(t, 10*time.Second, "tokens of the second rotated-in key", func() bool { return l.accepted(next2) >= 20 })
	l.halt(t)

	t.Logf("rotation under load: %d requests sent, %d rejected; accepted per key: %v", l.sent, len(l.rejected), l.byKID)
	if len(l.rejected) > 0 {
		t.Fatalf("%d valid requests rejected during rotation, first: %v", len(l.rejected), l.rejected[0])
	}

	// Revoke the signing key: its still-valid, already-verified token is
	// refused at the relying service's next key refresh.
	session := -1
	for i, a := range l.latest {
		if kidOf(a) == next2 && time.Until(tokenExp(t, a)) > 30*time.Second {
			session = i
		}
	}
	if session < 0 {
		t.Fatalf("no fresh token of key %s to test revocation with", next2)
	}
	stolen := l.latest[session]
	keysCmd("revoke", next2)
	revokedAt := time.Now()
	c := rawClient()
	took := waitFor(t, 30*time.Second, "token of the revoked key refused", func() bool {
		h, err := visit(c, app, stolen)
		if err != nil {
			t.Fatal(err)
		}
		return h.status == http.StatusUnauthorized
	})
	t.Logf("token of revoked key %s refused %s after `keys revoke`", next2, took.Round(100*time.Millisecond))

	// A token of the fresh key works (the issuer picks the change up within 2 s).
	fresh := keyIn(s.issuerKeys(t), "active")
	if fresh == "" || fresh == next2 {
		t.Fatalf("no fresh active key after revoking %s", next2)
	}
	tok := l.refresh[session]
	waitFor(t, 20*time.Second, "token of the fresh key accepted", func() bool {
		var access string
		tok, access = s.mustRefresh(t, c, tok, app)
		if tokenKID(t, access) != fresh {
			return false
		}
		h, err := visit(c, app, access)
		return err == nil && h.status == http.StatusOK
	})
	t.Logf("token of fresh key %s accepted %s after `keys revoke`", fresh, time.Since(revokedAt).Round(100*time.Millisecond))
}
