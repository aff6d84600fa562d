package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// current is the signed-in user of a request to the issuer itself.
type current struct {
	User    store.User
	Session store.Session
}

// currentSession is who the browser is signed in as, for the pages every
// browser sees (the login form's "already signed in", the logout form,
// logout): the session of its session cookie where it has one (host-only,
// so no sibling host can toss one on https), else of its access cookie,
// unless the access cookies are ambiguous (two sessions: one was tossed by a
// sibling host). The issuer has the store at hand, so it checks the session
// there and needs no revocation feed.
func (s *Server) currentSession(c echo.Context) (*current, bool) {
	ctx := c.Request().Context()
	if sid, ok := s.sessionCookieSID(c); ok {
		return s.lookupSession(ctx, sid)
	}
	sid, ambiguous := s.accessSession(c)
	if ambiguous || sid == "" {
		return nil, false
	}
	return s.lookupSession(ctx, sid)
}

// alreadySignedIn reports whether /login can send the browser straight back
// with a valid access token: its current session's, or a fresh one from its
// refresh cookie. Ambiguous access cookies without a session cookie are not
// signed in: the browser is asked to sign in.
func (s *Server) alreadySignedIn(c echo.Context) bool {
	cur, ok := s.currentSession(c)
	sid, ambiguous := s.accessSession(c)
	if ok && sid == cur.Session.ID {
		return true
	}
	if ambiguous && !ok {
		return false
	}
	// An expired access token with a live refresh cookie: refresh on the spot.
	_, err := s.rotate(c)
	return err == nil
}

// accountSession is the signed-in session for account pages and actions:
// only the session cookie counts, never the access cookie alone.
func (s *Server) accountSession(c echo.Context) (*current, bool) {
	sid, ok := s.sessionCookieSID(c)
	if !ok {
		return nil, false
	}
	return s.lookupSession(c.Request().Context(), sid)
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

// signedIn returns the account session, or answers with a redirect to sign
// in, back to back (a path on the issuer). A browser that shows signs of a
// session but has no session cookie (signed in before the cookie existed,
// or holding only a copied access token) is asked to sign in again, even
// though it has a session.
func (s *Server) signedIn(c echo.Context, back string) (*current, bool, error) {
	cur, ok := s.accountSession(c)
	if !ok {
		c.Response().Header().Set("Cache-Control", "no-store")
		return nil, false, c.Redirect(http.StatusSeeOther, s.signInURL(c, back))
	}
	return cur, true, nil
}

// signInURL is where a browser without an account session signs in.
func (s *Server) signInURL(c echo.Context, back string) string {
	prompt := ""
	if s.anySessionCookie(c) {
		prompt = "prompt=login&"
	}
	return "/login?" + prompt + "return_to=" + url.QueryEscape(s.cfg.URL+back)
}

// recentAuth is how recent a sign-in must be to add or remove a factor or
// make new recovery codes: a session left open on a shared computer must not
// be enough to lock its owner out.
const recentAuth = 10 * time.Minute

// recent reports whether cur signed in recently enough for a sensitive
// change; if not, it answers with a redirect to sign in again, back to
// back (a path on the issuer).
func (s *Server) recent(c echo.Context, cur *current, back string) (bool, error) {
	if s.now().Sub(cur.Session.AuthTime) <= recentAuth {
		return true, nil
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return false, c.Redirect(http.StatusSeeOther, "/login?prompt=login&return_to="+url.QueryEscape(s.cfg.URL+back))
}

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
