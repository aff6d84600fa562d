package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// maxPropagation bounds how long a session ended at the issuer may still be
// accepted by a relying service polling the revocation feed every second:
// one poll interval, plus two seconds of slack for a loaded machine.
const maxPropagation = 3 * time.Second

// TestInstantLogout ends sessions at the issuer three ways (logout, "sign out
// all other sessions", refresh-token reuse) while an access token of the
// session is valid and already verified (cached) at a relying service: within
// one poll interval the relying service refuses it, and the session that was
// not ended keeps working.
func TestInstantLogout(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	alice := s.userURL("alice")
	b1, b2 := newBrowser(t), newBrowser(t)
	if r := s.signUp(t, b1, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	if r := s.signIn(t, b2, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", r.status)
	}
	c := rawClient()
	kept := b2.cookie(alice, "canopy").Value

	// ended runs end (which must end the session of tok at the issuer) and
	// measures how long the relying service still accepts tok.
	ended := func(what, tok string, end func()) {
		t.Helper()
		if h, err := visit(c, alice, tok); err != nil || h.status != http.StatusOK {
			t.Fatalf("%s: token not accepted before: %v %d", what, err, h.status)
		}
		end()
		took := waitFor(t, 10*time.Second, what+": token refused", func() bool {
			h, err := visit(c, alice, tok)
			if err != nil {
				t.Fatal(err)
			}
			if h.status == http.StatusOK {
				return false
			}
			if h.status != http.StatusUnauthorized || h.reason != "revoked" {
				t.Fatalf("%s: %d %q, want 401 revoked", what, h.status, h.reason)
			}
			return true
		})
		t.Logf("%s: the relying service refused the ended session's token %s after the issuer answered", what, took.Round(10*time.Millisecond))
		if took > maxPropagation {
			t.Errorf("%s: propagation took %s, more than %s", what, took, maxPropagation)
		}
		// A navigation with it is sent to refresh, which is refused.
		nav, err := fetch(c, http.MethodGet, alice, map[string]string{"canopy": tok},
			http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"navigate"}})
		if err != nil || nav.status != http.StatusSeeOther || !strings.HasPrefix(nav.location, s.issuerURL+"/refresh?") {
			t.Fatalf("%s: navigation with the ended token: %v %d %q", what, err, nav.status, nav.location)
		}
		if h, err := visit(c, alice, kept); err != nil || h.status != http.StatusOK {
			t.Fatalf("%s: the other session's token: %v %d %q", what, err, h.status, h.reason)
		}
	}

	ended("logout", b1.cookie(alice, "canopy").Value, func() {
		page := b1.navigate(s.issuerURL + "/logout?return_to=" + url.QueryEscape(alice))
		r := b1.post(s.issuerURL+"/logout", url.Values{"csrf_token": {csrf(t, page.body)}, "return_to": {alice}}, s.issuerURL)
		if r.status != http.StatusSeeOther {
			t.Fatalf("POST /logout: %d", r.status)
		}
	})

	if r := s.signIn(t, b1, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in again: %d", r.status)
	}
	ended("sign out other sessions", b1.cookie(alice, "canopy").Value, func() {
		page := b2.navigate(s.issuerURL + "/")
		if page.status != http.StatusOK {
			t.Fatalf("account page: %d", page.status)
		}
		r := b2.post(s.issuerURL+"/account/signout", url.Values{"sid": {"others"}, "csrf_token": {csrf(t, page.body)}}, s.issuerURL)
		if r.status != http.StatusSeeOther {
			t.Fatalf("POST /account/signout others: %d\n%s", r.status, r.body)
		}
	})

	b3 := newBrowser(t)
	if r := s.signIn(t, b3, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("third sign-in: %d", r.status)
	}
	r0 := b3.cookie(s.issuerURL, "canopy-refresh").Value
	r1, _ := s.mustRefresh(t, c, r0, alice)
	_, access := s.mustRefresh(t, c, r1, alice)
	ended("refresh-token reuse", access, func() {
		if h, err := s.refreshWith(c, r0, alice); err != nil || !h.toLogin() {
			t.Fatalf("reuse of a superseded token: %v %d %q", err, h.status, h.location)
		}
	})
}
