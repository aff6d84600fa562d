package e2e

import (
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // PRAGMA integrity_check on the issuer's file
)

// TestRefreshDurableAcrossKill rotates refresh tokens of several sessions in
// tight loops and SIGKILLs the issuer mid-load. Every rotation whose response
// reached a client must have been committed: after a restart on the same
// database each client's last received token still works, either rotating
// (the kill came before its next rotation committed) or converging (the next
// rotation committed but its response was lost, so the last received token
// is now the predecessor, inside the grace). The database passes
// PRAGMA integrity_check.
func TestRefreshDurableAcrossKill(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	const clients = 4
	home := s.userURL("carol")
	tokens, sids := make([]string, clients), make([]string, clients)
	for i := range clients {
		b := newBrowser(t)
		var r response
		if i == 0 {
			r = s.signUp(t, b, "carol", alicePW, home)
		} else {
			r = s.signIn(t, b, "carol", alicePW, home)
		}
		if r.status != http.StatusSeeOther {
			t.Fatalf("session %d: %d", i, r.status)
		}
		tokens[i] = b.cookie(s.issuerURL, "canopy-refresh").Value
		sids[i] = tokenSID(t, b.cookie(home, "canopy").Value)
	}

	// Load: each client rotates its own session until the issuer dies (at most
	// 400 rotations or 10 s each). Only complete 303 responses count.
	var (
		total    atomic.Int64
		wg       sync.WaitGroup
		rotated  = make([]int, clients)
		cutShort = make([]error, clients) // the error that ended the loop
		bad      = make([]string, clients)
	)
	loadStart := time.Now()
	deadline := loadStart.Add(10 * time.Second)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := rawClient()
			c.Timeout = 5 * time.Second
			for rotated[i] < 400 && time.Now().Before(deadline) {
				h, err := s.refreshWith(c, tokens[i], home)
				if err != nil {
					cutShort[i] = err
					return
				}
				next, _, ok := h.rotated(home)
				if !ok {
					bad[i] = fmt.Sprintf("%d %q", h.status, h.location)
					return
				}
				tokens[i] = next
				rotated[i]++
				total.Add(1)
			}
		}()
	}
	// Kill once the load is well under way: after 100 rotations, or 1.5 s on
	// a slow machine.
	waitFor(t, 5*time.Second, "load under way", func() bool {
		return total.Load() >= 100 || (time.Since(loadStart) > 1500*time.Millisecond && total.Load() >= clients)
	})
	s.issuer.Kill()
	killedAt := total.Load()
	wg.Wait()
	for i := range clients {
		if bad[i] != "" {
			t.Fatalf("client %d: refresh answered %s during the load", i, bad[i])
		}
		if cutShort[i] == nil {
			t.Fatalf("client %d finished its load before the kill: the kill was not mid-load", i)
		}
	}
	t.Logf("SIGKILL after %d rotations (%d in all, per client %v)", killedAt, total.Load(), rotated)

	s.startIssuer(t)
	c := rawClient()
	for i := range clients {
		next, _ := s.mustRefresh(t, c, tokens[i], home)
		// Converged or rotated, the session goes on.
		s.mustRefresh(t, c, next, home)
	}
	revoked := s.revokedSIDs(t)
	for i, sid := range sids {
		if revoked[sid] {
			t.Fatalf("session %d was revoked by the restart", i)
		}
	}

	s.issuer.Stop()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dir, "issuer.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("PRAGMA integrity_check: %q %v", check, err)
	}
}
