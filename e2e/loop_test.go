package e2e

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
)

// followLoop navigates to u and follows the redirects between the relying
// service and the issuer, as a browser would, for at most 8 hops. It returns
// the first response that is not a redirect and how many times the browser
// was sent through the issuer's /refresh.
func followLoop(t *testing.T, s *stack, b *browser, u string) (response, int) {
	t.Helper()
	rounds := 0
	for range 8 {
		r := b.navigate(u)
		if r.status != http.StatusSeeOther {
			return r, rounds
		}
		u = r.location
		if strings.HasPrefix(u, "/") {
			u = s.issuerURL + u
		}
		if strings.HasPrefix(u, s.issuerURL+"/refresh?") {
			rounds++
		}
	}
	t.Fatalf("still redirecting after 8 hops (%d rounds through /refresh): no loop guard", rounds)
	return response{}, 0
}

// TestRedirectLoopGuard: a relying service that refuses every token the
// issuer hands back stops the browser after two rounds with an error page
// that names the cause. Clock skew cannot be staged end to end (the relying
// program has no clock setting and Go binaries ignore libfaketime); pkg/sso's
// TestRedirectLoopGuard covers it ("clock skew", "clock skew, issued in the
// future") with an injected clock, through the same middleware.
func TestRedirectLoopGuard(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *stack, b *browser, u string, cause ...string) {
		t.Helper()
		r, rounds := followLoop(t, s, b, u)
		body := html.UnescapeString(r.body)
		if r.status != http.StatusInternalServerError || !strings.Contains(body, "Sign-in keeps failing") {
			t.Fatalf("after %d rounds: %d, want the loop page\n%s", rounds, r.status, body)
		}
		if rounds != 2 {
			t.Fatalf("loop page after %d rounds through /refresh, want 2", rounds)
		}
		for _, c := range cause {
			if !strings.Contains(body, c) {
				t.Fatalf("loop page does not say %q:\n%s", c, body)
			}
		}
		// "Try again" starts a fresh count: the loop cookie is gone.
		if b.cookie(u, "canopy-loop") != nil {
			t.Fatal("loop cookie left after the error page")
		}
	}

	t.Run("cookie domain mismatch", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, stackOptions{})
		b := newBrowser(t)
		if r := s.signUp(t, b, "alice", alicePW, s.appURL()); r.status != http.StatusSeeOther {
			t.Fatalf("sign-up: %d", r.status)
		}
		// A relying service configured for another cookie domain (aud).
		p, port := s.startRelying(t, "app."+s.domain, "30s", "--audience", "other.localhost")
		waitReady(t, port, p)
		wrong := fmt.Sprintf("http://app.%s:%d/", s.domain, port)
		check(t, s, b, wrong, "Cookie domain mismatch", `token for "domain.localhost", this service expects "other.localhost"`)
		// The same browser is fine on a correctly configured service.
		if r := b.navigate(s.appURL()); r.status != http.StatusOK {
			t.Fatalf("app with the right audience: %d", r.status)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		t.Parallel()
		// The relying service reads a key set that does not hold the issuer's key.
		s, _ := newProxiedStack(t, stackOptions{}, jwksForeign)
		b := newBrowser(t)
		if r := s.signUp(t, b, "alice", alicePW, s.appURL()); r.status != http.StatusSeeOther {
			t.Fatalf("sign-up: %d", r.status)
		}
		waitReady(t, s.appPort, s.app)
		check(t, s, b, s.appURL(), "Unknown key", "not in the sign-in service's key set")
	})
}
