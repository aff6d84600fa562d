package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// startSession creates a session for u, signed in with the methods amr, and
// signs the user in.
func (s *Server) startSession(c echo.Context, u store.User, amr []string) (store.Session, error) {
	return s.beginSession(c, u, sessionSpec{amr: amr})
}

// sessionSpec is how a session begins: its methods, and for a sign-in at an
// upstream provider, the provider, its groups, when it authenticated the
// person and how long before the session must go back to it.
type sessionSpec struct {
	amr            []string
	idp            string
	upstreamGroups []string
	authTime       time.Time     // now when zero
	maxLife        time.Duration // the session's lifetime when shorter than --session-ttl
	// root and domain make a session on another root domain, linked to
	// root (a primary session) and ending no later than it.
	root   *store.Session
	domain *domain
}

func (s *Server) beginSession(c echo.Context, u store.User, spec sessionSpec) (store.Session, error) {
	amr := spec.amr
	now := s.now()
	exp := now.Add(s.cfg.AccessTTL)
	req := c.Request()
	sess := store.Session{
		ID: randomID(16), UserID: u.ID, CreatedAt: now, AuthTime: now, ExpiresAt: now.Add(s.cfg.SessionTTL),
		LastUsedAt: now, AccessUntil: exp, UserAgent: truncate(req.UserAgent(), 256), IP: c.RealIP(),
	}
	if !spec.authTime.IsZero() {
		sess.AuthTime = spec.authTime
	}
	if spec.maxLife > 0 && spec.maxLife < s.cfg.SessionTTL {
		// The session ends, and its refresh with it, at max-session: the
		// browser signs in at the provider again.
		sess.ExpiresAt = now.Add(spec.maxLife)
	}
	d := s.primary()
	if spec.domain != nil && spec.root != nil && !spec.domain.primary {
		d = spec.domain
		sess.ID = store.LinkedSessionID(spec.root.ID, d.tag)
		if spec.root.ExpiresAt.Before(sess.ExpiresAt) {
			sess.ExpiresAt = spec.root.ExpiresAt
		}
	}
	refresh := randomID(32)
	ctx := req.Context()
	if err := s.store.CreateSession(ctx, sess, hashToken(refresh)); err != nil {
		return sess, fmt.Errorf("create session: %w", err)
	}
	// Should this fail, no cookie is set: nobody holds the session's refresh
	// token, so it can never be used.
	if err := s.store.SetSessionAMR(ctx, sess.ID, amr); err != nil {
		return sess, fmt.Errorf("record session amr: %w", err)
	}
	if spec.idp != "" {
		if err := s.store.SetSessionUpstream(ctx, sess.ID, spec.idp, spec.upstreamGroups); err != nil {
			return sess, fmt.Errorf("record session provider: %w", err)
		}
	}
	groups, err := s.store.Groups(ctx, u.ID)
	if err != nil {
		return sess, fmt.Errorf("groups: %w", err)
	}
	access, err := s.mint(d, u, sess, facts{amr: amr, groups: mergeGroups(groups, spec.upstreamGroups), idp: spec.idp}, now, exp)
	if err != nil {
		return sess, err
	}
	s.setSessionCookies(c, access, refresh, sess, now)
	s.setSessionCookie(c, sess.ID, sess.ExpiresAt, now)
	if d.primary {
		s.setDeviceCookie(c, u.Username, now)
	}
	// A new login gets a new CSRF secret too: nothing from before the login carries over.
	s.rotateCSRF(c)
	return sess, nil
}

// facts are what a token says beyond the session row: how the session
// signed in and the user's groups.
type facts struct {
	amr, groups []string
	idp         string // the upstream provider of a federated session
}

// maxTokenGroupBytes bounds the groups of a token, measured as in its JSON
// ("name", each): issuer/cli keeps a user's local groups within it, and a
// federated session's provider groups fill what the local ones leave, so
// the token stays under 1 KiB (TestUpstreamTokenBudget).
const maxTokenGroupBytes = 180

// mergeGroups is the user's local groups and, within the budget they
// leave, a federated session's provider groups (in order), sorted, each once.
func mergeGroups(local, upstream []string) []string {
	if len(upstream) == 0 {
		return local
	}
	all := slices.Clone(local)
	size := 0
	for _, g := range local {
		size += len(g) + 3
	}
	for _, g := range upstream {
		if slices.Contains(all, g) {
			continue
		}
		if size+len(g)+3 > maxTokenGroupBytes {
			continue
		}
		size += len(g) + 3
		all = append(all, g)
	}
	slices.Sort(all)
	return all
}

// mint signs an access token for the session. auth_time is the session's
// sign-in, amr how it was made, groups the user's groups as they are now
// (so a membership removed takes effect at the next refresh). No token
// outlives its session: exp is at most the session's absolute end, which
// the token also carries as session_exp.
func (s *Server) mint(d *domain, u store.User, sess store.Session, f facts, now, exp time.Time) (string, error) {
	if exp.After(sess.ExpiresAt) {
		exp = sess.ExpiresAt
	}
	claims := sso.Claims{
		Issuer: d.url, Subject: u.ID, Audience: d.cookieDomain,
		Expiry: exp.Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(),
		ID: randomID(16), SessionID: sess.ID, Username: u.Username,
		AuthTime: sess.AuthTime.Unix(), AMR: f.amr, Groups: f.groups, IDP: f.idp,
		SessionExpiry: sess.ExpiresAt.Unix(),
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return s.keys.Sign(payload)
}

// setSessionCookies sets the access cookie on the cookie domain and the refresh
// cookie host-only, both living as long as the session (SPEC.md, Cookies).
func (s *Server) setSessionCookies(c echo.Context, access, refresh string, sess store.Session, now time.Time) {
	maxAge := int(sess.ExpiresAt.Sub(now) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	c.SetCookie(&http.Cookie{Name: s.cookies.Access, Value: access, Domain: s.domainOf(c).cookieDomain, Path: "/",
		MaxAge: maxAge, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if refresh != "" {
		c.SetCookie(&http.Cookie{Name: s.cookies.Refresh, Value: refresh, Path: "/",
			MaxAge: maxAge, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

// clearSessionCookies expires the access, refresh and session cookies with
// the Domain and Path they were set with.
func (s *Server) clearSessionCookies(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: s.sessionCookie(), Value: "", Path: "/",
		MaxAge: -1, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	c.SetCookie(&http.Cookie{Name: s.cookies.Access, Value: "", Domain: s.domainOf(c).cookieDomain, Path: "/",
		MaxAge: -1, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	c.SetCookie(&http.Cookie{Name: s.cookies.Refresh, Value: "", Path: "/",
		MaxAge: -1, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
