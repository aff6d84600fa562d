package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// The session cookie is what account management rests on. The access cookie
// reaches every host under the cookie domain (and relying's --forward-token
// hands it to upstreams), so it proves nothing at the issuer's account pages;
// the refresh cookie rotates. The session cookie is host-only (__Host- on
// https), HttpOnly, SameSite=Lax, never leaves the issuer's host and never
// changes for the life of its session: "<sid>.<mac>", the mac an HMAC-SHA256
// under a key derived from a server secret over the sid. Nothing is stored:
// the session row decides whether it still works (logout, sign-out, password
// change and reuse detection all end it there), and only the issuer can make
// a value for a sid, which every sibling host sees in the access token.

// maxAccessCookies bounds how many access cookies of one request are
// verified; more are a tossing attempt, and ambiguous.
const maxAccessCookies = 8

// sessionCookie names the session cookie: __Host- on https.
func (s *Server) sessionCookie() string {
	if s.cfg.Secure() {
		return "__Host-canopy-session"
	}
	return "canopy-session"
}

func (s *Server) sessionMAC(sid string) string {
	m := hmac.New(sha256.New, s.sessionKey)
	m.Write([]byte("canopy session cookie\x00"))
	m.Write([]byte(sid))
	return rawURL(m.Sum(nil))
}

// setSessionCookie gives the browser the session cookie of sess, living as
// long as the session.
func (s *Server) setSessionCookie(c echo.Context, sid string, expires, now time.Time) {
	maxAge := max(int(expires.Sub(now)/time.Second), 1)
	c.SetCookie(&http.Cookie{Name: s.sessionCookie(), Value: sid + "." + s.sessionMAC(sid), Path: "/",
		MaxAge: maxAge, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// cookieValues returns the values of every cookie called name, at most limit
// of them, and how many there were.
func cookieValues(c echo.Context, name string, limit int) ([]string, int) {
	var vals []string
	n := 0
	for _, ck := range c.Request().Cookies() {
		if ck.Name != name {
			continue
		}
		n++
		if len(vals) < limit {
			vals = append(vals, ck.Value)
		}
	}
	return vals, n
}

// sessionCookieSID returns the session named by the browser's session
// cookie, when it carries one with a right MAC. On http a sibling host can
// toss a cookie of that name too; two valid ones of different sessions are
// ambiguous, and name none.
func (s *Server) sessionCookieSID(c echo.Context) (string, bool) {
	vals, n := cookieValues(c, s.sessionCookie(), maxAccessCookies)
	if n > maxAccessCookies {
		return "", false
	}
	found := ""
	for _, v := range vals {
		sid, mac, ok := strings.Cut(v, ".")
		if !ok || sid == "" || len(v) > 256 || !hmac.Equal([]byte(mac), []byte(s.sessionMAC(sid))) {
			continue
		}
		if found != "" && found != sid {
			return "", false
		}
		found = sid
	}
	if found != "" && !s.domainOf(c).owns(found) {
		// Another domain's session: the cookie was copied, as no browser
		// sends a host-only cookie to another host.
		return "", false
	}
	return found, found != ""
}

// accessSession reads the access cookies: sid is the session of a valid
// token among them; ambiguous reports signature-valid tokens (expired ones
// too) of more than one session, or too many cookies, which a sibling host
// tossing its own cookie causes; then sid is empty.
func (s *Server) accessSession(c echo.Context) (sid string, ambiguous bool) {
	vals, n := cookieValues(c, s.cookies.Access, maxAccessCookies)
	if n > maxAccessCookies {
		return "", true
	}
	ctx := c.Request().Context()
	seen := ""
	for _, v := range vals {
		claims, err := s.domainOf(c).verifier.Verify(ctx, v)
		var ce *sso.ClaimsError
		switch {
		case err == nil:
			if seen != "" && seen != claims.SessionID {
				return "", true
			}
			seen, sid = claims.SessionID, claims.SessionID
		case errors.As(err, &ce) && ce.Claims != nil && ce.Claims.SessionID != "":
			// A good signature over refused claims (expired): still some
			// session's token, so it counts against ambiguity.
			if seen != "" && seen != ce.Claims.SessionID {
				return "", true
			}
			seen = ce.Claims.SessionID
		}
	}
	return sid, false
}

// anySessionCookie reports whether the browser shows signs of a session:
// then the way to the account is signing in again (prompt=login).
func (s *Server) anySessionCookie(c echo.Context) bool {
	for _, name := range []string{s.sessionCookie(), s.cookies.Access, s.cookies.Refresh} {
		if _, err := c.Cookie(name); err == nil {
			return true
		}
	}
	return false
}
