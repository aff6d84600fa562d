package server

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/pgtest"
	"github.com/canopy-sso/canopy/issuer/store/postgres"
)

// The PostgreSQL cluster of TestHostileUserAgent starts only when that test
// asks for it.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestHostileUserAgent: a User-Agent that is not valid UTF-8, or that the
// issuer's own 256-byte cut splits in the middle of a character, neither
// turns a sign-in into a 500 on PostgreSQL (which refuses such text) nor
// loses its audit events; what is stored is clean on every backend.
func TestHostileUserAgent(t *testing.T) {
	agents := map[string]string{
		"invalid byte":            "Mozilla/5.0 (X11; \xff) Chrome/130",
		"cut mid-character":       "Mozilla/5.0 a" + strings.Repeat("é", 200), // cut at 256 bytes
		"overlong slash":          "Mozilla/5.0 \xc0\xaf",
		"invalid at the very end": strings.Repeat("a", 255) + "\xc3\xa9",
	}
	backends := map[string]func(t *testing.T) store.Store{
		"sqlite": nil,
		"postgres": func(t *testing.T) store.Store {
			pg, err := postgres.Open(t.Context(), pgtest.Start(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pg.Close() })
			return pg
		},
	}
	for backend, open := range backends {
		t.Run(backend, func(t *testing.T) {
			o := options{noThrottle: true}
			if open != nil {
				pg := open(t)
				o.wrapStore = func(store.Store) store.Store { return pg }
			}
			h := newHarness(t, o)
			st := h.srv.store // the store the server writes to
			hash, err := h.srv.hasher.Hash(context.Background(), "correct-horse")
			if err != nil {
				t.Fatal(err)
			}
			alice := store.User{ID: randomID(16), Username: "alice", PasswordHash: hash, CreatedAt: h.clock.Now()}
			if err := st.CreateUser(context.Background(), alice); err != nil {
				t.Fatal(err)
			}
			for name, ua := range agents {
				t.Run(name, func(t *testing.T) {
					b := h.browser()
					b.header.Set("User-Agent", ua)
					r := b.post("/login", url.Values{"username": {"alice"}, "password": {"wrong-horse"}, "csrf_token": {b.token()}})
					if r.StatusCode != http.StatusUnauthorized {
						t.Fatalf("wrong password: status %d, want 401", r.StatusCode)
					}
					checkLastEvent(t, st, alice.ID, "login_failed")
					b.login("alice", "correct-horse")
					checkLastEvent(t, st, alice.ID, "login")
					sess, err := st.Session(context.Background(), b.sid())
					if err != nil {
						t.Fatal(err)
					}
					checkStoredText(t, "session User-Agent", sess.UserAgent)
				})
			}
		})
	}
}

// checkLastEvent checks that the user's newest event is of kind and was
// stored with clean text.
func checkLastEvent(t *testing.T, st store.Store, userID, kind string) {
	t.Helper()
	events, err := st.Events(context.Background(), userID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != kind {
		t.Fatalf("newest event = %+v, want a %s event", events, kind)
	}
	checkStoredText(t, kind+" event User-Agent", events[0].UserAgent)
}

func checkStoredText(t *testing.T, what, v string) {
	t.Helper()
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		t.Errorf("%s = %q: not clean UTF-8 text", what, v)
	}
	if v == "" || strings.Count(v, string(utf8.RuneError)) == utf8.RuneCountInString(v) {
		t.Errorf("%s = %q: nothing of it kept", what, v)
	}
}
