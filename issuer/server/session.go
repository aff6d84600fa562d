package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// dirKeySet lets the issuer verify its own tokens against its key directory,
// the same public keys it publishes. Its generation moves whenever the set
// changes, so the verifier's cache drops tokens of a revoked key at once.
type dirKeySet struct {
	dir  *keys.Dir
	mu   sync.Mutex
	etag string
	gen  uint64
	set  jose.JSONWebKeySet
}

// sync re-reads the published set when its ETag changed.
func (k *dirKeySet) sync() error {
	body, etag := k.dir.JWKS()
	if etag == k.etag {
		return nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("server: own JWKS: %w", err)
	}
	k.set, k.etag = set, etag
	k.gen++
	return nil
}

func (k *dirKeySet) Generation() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	_ = k.sync() // on a parse failure Key reports the error
	return k.gen
}

func (k *dirKeySet) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.sync(); err != nil {
		return nil, err
	}
	found := k.set.Key(kid)
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: kid not in key set", sso.ErrSignature)
	}
	return &found[0], nil
}

// hashToken is the stored form of a refresh token.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// successor derives the next refresh token from the presented one, so that
// every retry and every instance computes the same value (SPEC.md, Refresh).
func (s *Server) successor(tok string) string {
	m := hmac.New(sha256.New, s.refreshKey)
	m.Write([]byte("canopy refresh successor\x00"))
	m.Write([]byte(tok))
	return rawURL(m.Sum(nil))
}

// mint signs an access token for the session. auth_time is the session's
// sign-in, amr how it was made, groups the user's groups as they are now
// (so a membership removed takes effect at the next refresh).
func (s *Server) mint(u store.User, sess store.Session, f facts, now, exp time.Time) (string, error) {
	claims := sso.Claims{
		Issuer: s.cfg.URL, Subject: u.ID, Audience: s.cfg.CookieDomain,
		Expiry: exp.Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(),
		ID: randomID(16), SessionID: sess.ID, Username: u.Username,
		AuthTime: sess.AuthTime.Unix(), AMR: f.amr, Groups: f.groups,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return s.keys.Sign(payload)
}

// facts are what a token says beyond the session row: how the session
// signed in and the user's groups.
type facts struct {
	amr, groups []string
}

// sessionFacts reads the facts of a session of u from the store.
func (s *Server) sessionFacts(ctx context.Context, u store.User, sid string) (facts, error) {
	amr, err := s.store.SessionAMR(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		// Sessions from before methods were recorded all began with a password.
		amr, err = []string{store.AMRPassword}, nil
	}
	if err != nil {
		return facts{}, fmt.Errorf("session amr: %w", err)
	}
	groups, err := s.store.Groups(ctx, u.ID)
	if err != nil {
		return facts{}, fmt.Errorf("groups: %w", err)
	}
	return facts{amr: amr, groups: groups}, nil
}

// setSessionCookies sets the access cookie on the cookie domain and the refresh
// cookie host-only, both living as long as the session (SPEC.md, Cookies).
func (s *Server) setSessionCookies(c echo.Context, access, refresh string, sess store.Session, now time.Time) {
	maxAge := int(sess.ExpiresAt.Sub(now) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	c.SetCookie(&http.Cookie{Name: s.cookies.Access, Value: access, Domain: s.cfg.CookieDomain, Path: "/",
		MaxAge: maxAge, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if refresh != "" {
		c.SetCookie(&http.Cookie{Name: s.cookies.Refresh, Value: refresh, Path: "/",
			MaxAge: maxAge, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

// clearSessionCookies expires both cookies with the Domain and Path they were set with.
func (s *Server) clearSessionCookies(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: s.cookies.Access, Value: "", Domain: s.cfg.CookieDomain, Path: "/",
		MaxAge: -1, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	c.SetCookie(&http.Cookie{Name: s.cookies.Refresh, Value: "", Path: "/",
		MaxAge: -1, Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// startSession creates a session for u, signed in with the methods amr, and
// signs the user in.
func (s *Server) startSession(c echo.Context, u store.User, amr []string) (store.Session, error) {
	now := s.now()
	exp := now.Add(s.cfg.AccessTTL)
	req := c.Request()
	sess := store.Session{
		ID: randomID(16), UserID: u.ID, CreatedAt: now, AuthTime: now, ExpiresAt: now.Add(s.cfg.SessionTTL),
		LastUsedAt: now, AccessUntil: exp, UserAgent: truncate(req.UserAgent(), 256), IP: c.RealIP(),
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
	groups, err := s.store.Groups(ctx, u.ID)
	if err != nil {
		return sess, fmt.Errorf("groups: %w", err)
	}
	access, err := s.mint(u, sess, facts{amr: amr, groups: groups}, now, exp)
	if err != nil {
		return sess, err
	}
	s.setSessionCookies(c, access, refresh, sess, now)
	// A new login gets a new CSRF secret too: nothing from before the login carries over.
	s.rotateCSRF(c)
	return sess, nil
}

// current is the signed-in user of a request to the issuer itself.
type current struct {
	User    store.User
	Session store.Session
}

// currentSession verifies the access cookie and checks the session in the
// store (the issuer has the store at hand, so it needs no revocation feed).
func (s *Server) currentSession(c echo.Context) (*current, bool) {
	ck, err := c.Cookie(s.cookies.Access)
	if err != nil || ck.Value == "" {
		return nil, false
	}
	ctx := c.Request().Context()
	claims, err := s.verifier.Verify(ctx, ck.Value)
	if err != nil {
		return nil, false
	}
	return s.lookupSession(ctx, claims.SessionID)
}

func (s *Server) lookupSession(ctx context.Context, sid string) (*current, bool) {
	sess, err := s.store.Session(ctx, sid)
	if err != nil || !sess.Active(s.now(), s.cfg.IdleTTL) {
		return nil, false
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil || u.Disabled {
		return nil, false
	}
	return &current{User: u, Session: sess}, true
}

// sessionForLogout finds the session to end: from a valid access token, or
// from the refresh cookie when the access token has expired.
func (s *Server) sessionForLogout(c echo.Context) (string, bool) {
	if cur, ok := s.currentSession(c); ok {
		return cur.Session.ID, true
	}
	ck, err := c.Cookie(s.cookies.Refresh)
	if err != nil || ck.Value == "" {
		return "", false
	}
	sess, err := s.store.SessionByRefresh(c.Request().Context(), hashToken(ck.Value))
	if err != nil {
		return "", false
	}
	return sess.ID, true
}

// rotate runs the refresh rotation for the refresh cookie and sets new cookies.
func (s *Server) rotate(c echo.Context) (store.RotateResult, error) {
	ck, err := c.Cookie(s.cookies.Refresh)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return store.RotateResult{}, store.ErrNotFound
	}
	now := s.now()
	exp := now.Add(s.cfg.AccessTTL)
	next := s.successor(ck.Value)
	res, err := s.store.RotateRefresh(c.Request().Context(), store.RotateRequest{
		PresentedHash: hashToken(ck.Value), SuccessorHash: hashToken(next), Now: now,
		Grace: s.cfg.RefreshGrace, IdleTTL: s.cfg.IdleTTL, AccessExpiry: exp,
	})
	switch {
	case errors.Is(err, store.ErrReuse):
		s.metrics.Refresh(metrics.RefreshReuse)
		s.event(c, "refresh_reuse", res.User, res.Session.ID, "a superseded refresh token was presented; session revoked")
		return res, err
	case errors.Is(err, store.ErrSessionEnded):
		s.metrics.Refresh(metrics.RefreshEnded)
		return res, err
	case errors.Is(err, store.ErrNotFound):
		s.metrics.Refresh(metrics.RefreshUnknown)
		return res, err
	case err != nil:
		s.metrics.Refresh(metrics.RefreshError)
		return res, err
	case res.Outcome == store.Converged:
		s.metrics.Refresh(metrics.RefreshConverged)
	default:
		s.metrics.Refresh(metrics.RefreshRotated)
	}
	f, err := s.sessionFacts(c.Request().Context(), res.User, res.Session.ID)
	if err != nil {
		return res, err
	}
	access, err := s.mint(res.User, res.Session, f, now, exp)
	if err != nil {
		return res, err
	}
	s.setSessionCookies(c, access, next, res.Session, now)
	return res, nil
}

// event records an audit event; a failure to record is logged, never fatal to the request.
func (s *Server) event(c echo.Context, kind string, u store.User, sid, detail string) {
	e := store.Event{At: s.now(), Kind: kind, UserID: u.ID, Username: u.Username, SessionID: sid,
		IP: c.RealIP(), UserAgent: truncate(c.Request().UserAgent(), 256), Detail: detail}
	if err := s.store.AddEvent(context.WithoutCancel(c.Request().Context()), e); err != nil {
		s.log.Warn("audit event not recorded", "kind", kind, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
