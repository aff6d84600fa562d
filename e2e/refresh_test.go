package e2e

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestRefreshConcurrentConverges presents one refresh cookie 50 times at once
// (tabs waking together, released on a barrier, so that on SQLite they land
// in the same group commits): every request gets the same successor, and
// the database holds exactly one rotation of the session. Then the
// chain A→B→C is followed by A again, inside the grace of A's rotation: A is
// no longer the immediate predecessor, so that is reuse and the whole session
// is revoked.
func TestRefreshConcurrentConverges(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{extra: []string{"--refresh-grace", "3s"}})
	alice := s.userURL("alice")
	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d\n%s", r.status, r.body)
	}
	a := b.cookie(s.issuerURL, "canopy-refresh").Value
	sid := tokenSID(t, b.cookie(alice, "canopy").Value)

	const n = 50
	c := rawClient()
	results, errs := make([]hit, n), make([]error, n)
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-release
			results[i], errs[i] = s.refreshWith(c, a, alice)
		}()
	}
	ready.Wait()
	close(release)
	done.Wait()
	rotatedAt := time.Now()
	successor := ""
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		next, _, ok := results[i].rotated(alice)
		if !ok {
			t.Fatalf("request %d: %d %q, cookies %v", i, results[i].status, results[i].location, results[i].set)
		}
		if successor == "" {
			successor = next
		}
		if next != successor || next == a {
			t.Fatalf("request %d got successor %.8s…, request 0 got %.8s… (original %.8s…)", i, next, successor, a)
		}
	}
	// Exactly one rotation: the original token and one successor on record.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dir, "issuer.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var tokens int
	err = db.QueryRow(`SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?`, sid).Scan(&tokens)
	_ = db.Close()
	if err != nil || tokens != 2 {
		t.Fatalf("refresh tokens of the session after %d concurrent presentations: %d (%v), want 2: exactly one rotation", n, tokens, err)
	}
	t.Logf("%d concurrent GET /refresh with one token: all 303 back with the same successor, one rotation stored", n)

	// The successor works (B → C) and its access token is accepted.
	cur, access := s.mustRefresh(t, c, successor, alice)
	if h, err := visit(c, alice, access); err != nil || h.status != http.StatusOK {
		t.Fatalf("access token after rotation: %v %d", err, h.status)
	}
	// A again, while still inside the grace of its own rotation.
	h, err := s.refreshWith(c, a, alice)
	if elapsed := time.Since(rotatedAt); elapsed >= 3*time.Second {
		t.Fatalf("replay came %s after the rotation, outside the 3s grace: the test proves nothing", elapsed)
	}
	if err != nil || !h.toLogin() {
		t.Fatalf("replay of A after A→B→C: %v %d %q, want 303 to /login", err, h.status, h.location)
	}
	if h, err := s.refreshWith(c, cur, alice); err != nil || !h.toLogin() {
		t.Fatalf("C after the reuse of A: %v %d %q, want the session revoked", err, h.status, h.location)
	}
	if !s.revokedSIDs(t)[sid] {
		t.Fatalf("sid %s not in /sessions/revoked after reuse", sid)
	}
}

// TestRefreshGrace replays the immediate predecessor: inside the grace it
// converges, after the grace it revokes the session. A password change with
// `issuer user set-password` ends every session of the user.
func TestRefreshGrace(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{extra: []string{"--refresh-grace", "2s"}})
	alice := s.userURL("alice")
	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	c := rawClient()
	a := b.cookie(s.issuerURL, "canopy-refresh").Value
	sid := tokenSID(t, b.cookie(alice, "canopy").Value)
	next, _ := s.mustRefresh(t, c, a, alice)
	rotatedAt := time.Now()
	// Inside the grace (a lost response): the same successor again.
	if again, _ := s.mustRefresh(t, c, a, alice); again != next {
		t.Fatal("a retry inside the grace got another successor")
	}
	sleepUntil(rotatedAt.Add(2500 * time.Millisecond))
	if h, err := s.refreshWith(c, a, alice); err != nil || !h.toLogin() {
		t.Fatalf("predecessor after the grace: %v %d %q, want 303 to /login", err, h.status, h.location)
	}
	if h, err := s.refreshWith(c, next, alice); err != nil || !h.toLogin() {
		t.Fatalf("successor after the reuse: %v %d %q, want the session revoked", err, h.status, h.location)
	}
	if !s.revokedSIDs(t)[sid] {
		t.Fatalf("sid %s not in /sessions/revoked after reuse", sid)
	}

	// set-password from the command line ends every session of bob.
	bob := s.userURL("bob")
	b1, b2 := newBrowser(t), newBrowser(t)
	if r := s.signUp(t, b1, "bob", "bobs first password", bob); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up bob: %d", r.status)
	}
	if r := s.signIn(t, b2, "bob", "bobs first password", bob); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in bob: %d", r.status)
	}
	var refresh, sids []string
	for _, br := range []*browser{b1, b2} {
		refresh = append(refresh, br.cookie(s.issuerURL, "canopy-refresh").Value)
		sids = append(sids, tokenSID(t, br.cookie(bob, "canopy").Value))
	}
	if out, err := s.issuerCmd(t, "bobs second password\n", "user", "set-password", "bob"); err != nil {
		t.Fatalf("set-password: %v\n%s", err, out)
	}
	// Another process (the CLI) committed the revocation: the issuer's feed
	// cache picks it up within its one-second rebuild interval.
	revoked := s.revokedSIDs(t)
	for deadline := time.Now().Add(5 * time.Second); (!revoked[sids[0]] || !revoked[sids[1]]) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		revoked = s.revokedSIDs(t)
	}
	for i := range refresh {
		if h, err := s.refreshWith(c, refresh[i], bob); err != nil || !h.toLogin() {
			t.Fatalf("session %d after set-password: %v %d %q", i, err, h.status, h.location)
		}
		if !revoked[sids[i]] {
			t.Fatalf("session %d not in /sessions/revoked after set-password", i)
		}
	}
	if r := s.signIn(t, newBrowser(t), "bob", "bobs first password", bob); r.status != http.StatusUnauthorized {
		t.Fatalf("old password after set-password: %d", r.status)
	}
	if r := s.signIn(t, newBrowser(t), "bob", "bobs second password", bob); r.status != http.StatusSeeOther {
		t.Fatalf("new password after set-password: %d", r.status)
	}
}

// TestSessionLifetimes: a session unused for --idle-ttl ends, though each
// use resets the clock; a session ends at --session-ttl however much it is
// used. The refresh cookie is presented by hand: the browser's jar would drop
// it at its Max-Age, hiding whether the issuer ends the session.
func TestSessionLifetimes(t *testing.T) {
	t.Parallel()
	// signedIn starts a stack with the issuer flags and signs alice up.
	signedIn := func(t *testing.T, flags ...string) (s *stack, tok string, before, after time.Time) {
		s = newStack(t, stackOptions{accessTTL: "1s", extra: flags})
		b := newBrowser(t)
		before = time.Now()
		if r := s.signUp(t, b, "alice", alicePW, s.userURL("alice")); r.status != http.StatusSeeOther {
			t.Fatalf("sign-up: %d", r.status)
		}
		return s, b.cookie(s.issuerURL, "canopy-refresh").Value, before, time.Now()
	}
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		s, tok, _, _ := signedIn(t, "--idle-ttl", "2500ms")
		c, alice := rawClient(), s.userURL("alice")
		// Uses 1 s apart keep it alive well past 2.5 s after login…
		for range 4 {
			time.Sleep(time.Second)
			tok, _ = s.mustRefresh(t, c, tok, alice)
		}
		// …then 3.5 s unused ends it.
		time.Sleep(3500 * time.Millisecond)
		if h, err := s.refreshWith(c, tok, alice); err != nil || !h.toLogin() {
			t.Fatalf("refresh after 3.5s idle (idle-ttl 2.5s): %v %d %q", err, h.status, h.location)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		s, tok, before, after := signedIn(t, "--session-ttl", "4s")
		c, alice := rawClient(), s.userURL("alice")
		uses := 0
		for {
			time.Sleep(700 * time.Millisecond)
			if time.Since(before) > 2800*time.Millisecond {
				break
			}
			tok, _ = s.mustRefresh(t, c, tok, alice)
			uses++
		}
		sleepUntil(after.Add(4300 * time.Millisecond))
		if h, err := s.refreshWith(c, tok, alice); err != nil || !h.toLogin() {
			t.Fatalf("refresh after session-ttl 4s (used %d times): %v %d %q", uses, err, h.status, h.location)
		}
	})
}
