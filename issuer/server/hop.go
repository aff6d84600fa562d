package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// The hop carries a sign-in from the primary to another root domain with
// first-party cookies only. On the other domain's host, a browser without
// a session gets a hop cookie (random, SameSite=Lax, host-only) and goes
// by top-level redirects to the primary's /authorize as that domain's
// internal client: the OpenID Provider's code flow, PKCE's verifier the
// hop cookie's random, the nonce a hash of it and the return URL. The
// primary reads its own session (a Lax cookie is sent on a top-level GET
// from another site), or has the person sign in, and sends a code back to
// the other host's /handover, which redeems it from the store, starts a
// session linked to the primary one and redirects at once to the return URL.

// pathHandover is where another domain's host redeems a hop's code.
const pathHandover = "/handover"

// Hop cookie bounds: how many hops one browser may have under way at once
// (several tabs), how long one may take (a sign-in at the primary on the
// way), and how many started within hopLoopWindow and never finished make
// a loop, which gets a page instead of another hop.
const (
	hopMaxPending = 4
	hopTTL        = 10 * time.Minute
	hopLoopWindow = 30 * time.Second
	hopLoopCount  = 3
)

// hopCookie names the hop cookie: __Host- on https.
func (s *Server) hopCookie() string {
	if s.cfg.Secure() {
		return "__Host-canopy-hop"
	}
	return "canopy-hop"
}

// hopEntry is one hop under way: when it started and its random.
type hopEntry struct {
	at     int64
	secret string
}

// hopEntries reads the hop cookie, dropping entries older than hopTTL.
func (s *Server) hopEntries(c echo.Context) []hopEntry {
	ck, err := c.Cookie(s.hopCookie())
	if err != nil || len(ck.Value) > 1024 {
		return nil
	}
	var out []hopEntry
	now := s.now().Unix()
	for _, part := range strings.Split(ck.Value, ".") {
		at, secret, ok := strings.Cut(part, "-")
		n, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || len(secret) != 43 || now-n > int64(hopTTL/time.Second) || n > now+60 {
			continue
		}
		out = append(out, hopEntry{at: n, secret: secret})
	}
	return out
}

func (s *Server) setHopEntries(c echo.Context, entries []hopEntry) {
	if len(entries) == 0 {
		c.SetCookie(&http.Cookie{Name: s.hopCookie(), Value: "", Path: "/", MaxAge: -1,
			Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return
	}
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = strconv.FormatInt(e.at, 10) + "-" + e.secret
	}
	c.SetCookie(&http.Cookie{Name: s.hopCookie(), Value: strings.Join(parts, "."), Path: "/",
		MaxAge: int(hopTTL / time.Second), Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// hopNonce binds a hop's code to the browser's random and to the return
// URL: the code carries it as its nonce.
func hopNonce(secret, returnTo string) string {
	sum := sha256.Sum256([]byte("canopy hop\x00" + secret + "\x00" + returnTo))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// pkceChallenge is the S256 challenge of a verifier (RFC 7636 §4.2).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// hopStart sends a browser on another domain's host, which has no session
// there, to the primary for one, back to returnTo (a validated return URL,
// or "" for that domain's start). reauth asks the primary for a fresh
// sign-in (prompt=login).
func (s *Server) hopStart(c echo.Context, d *domain, returnTo string, reauth bool) error {
	if returnTo == "" {
		returnTo = d.url + "/"
	}
	now := s.now().Unix()
	entries := s.hopEntries(c)
	recent := 0
	for _, e := range entries {
		if now-e.at < int64(hopLoopWindow/time.Second) {
			recent++
		}
	}
	if recent >= hopLoopCount {
		s.setHopEntries(c, nil)
		return s.hopFail(c, http.StatusLoopDetected, "Signing in here keeps starting over: this browser may be refusing cookies for "+
			d.host+" or "+s.primary().host+". Allow them, then open the page you wanted again.", returnTo)
	}
	e := hopEntry{at: now, secret: randomID(32)}
	entries = append(entries, e)
	if len(entries) > hopMaxPending {
		entries = entries[len(entries)-hopMaxPending:]
	}
	s.setHopEntries(c, entries)
	q := url.Values{
		"response_type": {"code"}, "client_id": {d.clientID}, "redirect_uri": {d.url + pathHandover},
		"scope": {wire.ScopeOpenID}, "state": {returnTo}, "nonce": {hopNonce(e.secret, returnTo)},
		"code_challenge": {pkceChallenge(e.secret)}, "code_challenge_method": {"S256"},
	}
	if reauth {
		q.Set("prompt", "login")
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	return c.Redirect(http.StatusSeeOther, s.primary().url+wire.PathAuthorize+"?"+q.Encode())
}

// handover redeems a hop's code on another domain's host: the code must be
// this domain's, unexpired, unused, for this browser's hop cookie and for
// the return URL in state. It starts a session linked to the primary one
// that issued the code, replacing any session this host had, and
// redirects at once. Every refusal is a page, never another hop.
func (s *Server) handover(c echo.Context) error {
	h := c.Response().Header()
	// The code is in this URL: no Referer may carry it on, no cache keep it.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	d := s.domainOf(c)
	if d.primary {
		return s.hopFail(c, http.StatusNotFound, "This address only completes a sign-in on another of this site's domains.", "")
	}
	q := c.Request().URL.Query()
	for k, v := range q {
		if len(v) > 1 {
			return s.hopFail(c, http.StatusBadRequest, "The sign-in hand-over repeats the parameter "+strconv.Quote(k)+".", "")
		}
	}
	returnTo := s.returnTo(q.Get("state"))
	if returnTo == "" {
		return s.hopFail(c, http.StatusBadRequest, "The sign-in hand-over names a return address that is not one of this site's.", "")
	}
	if e := q.Get("error"); e != "" {
		msg := "Signing in at " + s.primary().host + " did not complete."
		if e == "login_required" {
			msg = "You are not signed in at " + s.primary().host + "."
		}
		return s.hopFail(c, http.StatusBadRequest, msg, returnTo)
	}
	if q.Get("iss") != s.primary().url {
		return s.hopFail(c, http.StatusBadRequest, "The sign-in hand-over does not come from "+s.primary().host+".", returnTo)
	}
	entries := s.hopEntries(c)
	if len(entries) == 0 {
		return s.hopFail(c, http.StatusBadRequest, "This sign-in was started in another browser, or this browser does not keep cookies for "+
			d.host+". Open the page you wanted again here.", returnTo)
	}
	ctx := c.Request().Context()
	now := s.now()
	raw := q.Get("code")
	if raw == "" || len(raw) > 128 {
		return s.hopFail(c, http.StatusBadRequest, "The sign-in hand-over carries no code.", returnTo)
	}
	code, err := s.store.RedeemCode(ctx, hashToken(raw), now)
	switch {
	case errors.Is(err, store.ErrReuse):
		s.log.Warn("hand-over code presented again", "domain", d.cookieDomain)
		return s.hopFail(c, http.StatusBadRequest, "This sign-in hand-over was used already.", returnTo)
	case errors.Is(err, store.ErrNotFound):
		return s.hopFail(c, http.StatusBadRequest, "This sign-in hand-over is unknown.", returnTo)
	case err != nil:
		return err
	}
	switch {
	case code.ClientID != d.clientID || code.RedirectURI != d.url+pathHandover:
		return s.hopFail(c, http.StatusBadRequest, "This sign-in hand-over was made for another domain.", returnTo)
	case !now.Before(code.ExpiresAt):
		return s.hopFail(c, http.StatusBadRequest, "This sign-in hand-over has expired.", returnTo)
	}
	match, browser := -1, false
	for i, e := range entries {
		if checkPKCE(code.CodeChallenge, e.secret) != nil {
			continue
		}
		browser = true
		if hmac.Equal([]byte(code.Nonce), []byte(hopNonce(e.secret, returnTo))) {
			match = i
		}
	}
	switch {
	case !browser:
		return s.hopFail(c, http.StatusBadRequest, "This sign-in was started in another browser. Open the page you wanted again here.", returnTo)
	case match < 0:
		return s.hopFail(c, http.StatusBadRequest, "This sign-in hand-over was made for another return address.", returnTo)
	}
	s.setHopEntries(c, append(entries[:match:match], entries[match+1:]...))
	root, ok := s.lookupSession(ctx, code.SessionID)
	if !ok {
		return s.hopFail(c, http.StatusBadRequest, "Your sign-in at "+s.primary().host+" has ended.", returnTo)
	}
	if err := s.linkSession(c, d, root, code); err != nil {
		if errors.Is(err, store.ErrSessionEnded) {
			return s.hopFail(c, http.StatusBadRequest, "Your sign-in at "+s.primary().host+" has ended.", returnTo)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, returnTo)
}

// linkSession starts the session on d linked to root, with the code's
// sign-in time and methods (a hop never weakens a step-up rule), ending
// the session this host had, whoever's it was.
func (s *Server) linkSession(c echo.Context, d *domain, root *current, code store.AuthCode) error {
	ctx := c.Request().Context()
	if old, ok := s.sessionForLogout(c); ok {
		if err := s.store.RevokeSession(ctx, old, store.ReasonSignOutOne, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	spec := sessionSpec{amr: code.AMR, authTime: code.AuthTime, root: &root.Session, domain: d}
	if len(spec.amr) == 0 {
		spec.amr = []string{wire.AMRPassword}
	}
	if idp, groups, err := s.store.SessionUpstream(ctx, root.Session.ID); err == nil {
		spec.idp, spec.upstreamGroups = idp, groups
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	sess, err := s.beginSession(c, root.User, spec)
	if err != nil {
		return err
	}
	s.event(c, "domain_link", root.User, sess.ID, d.cookieDomain)
	return nil
}

// hopFail is the page of a hop that cannot go on; the link starts afresh
// at the return URL when there is one.
func (s *Server) hopFail(c echo.Context, status int, msg, returnTo string) error {
	v := &messageView{Title: "Signing in across domains did not work", Message: msg}
	if returnTo != "" {
		v.Link, v.LinkText = returnTo, "Try again"
	}
	return s.page(c, status, v)
}
