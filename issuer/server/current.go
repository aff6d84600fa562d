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

// signedIn returns the current session, or answers with a redirect to sign in.
func (s *Server) signedIn(c echo.Context, back string) (*current, bool, error) {
	cur, ok := s.currentSession(c)
	if !ok {
		c.Response().Header().Set("Cache-Control", "no-store")
		return nil, false, c.Redirect(http.StatusSeeOther, "/login?return_to="+url.QueryEscape(s.cfg.URL+back))
	}
	return cur, true, nil
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
