package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
)

// upstreamTTL is how long a started sign-in at a provider may take.
const upstreamTTL = 10 * time.Minute

// Challenge kinds of this feature.
const (
	challengeUpstream       = "upstream"        // a sign-in sent to a provider, keyed by its state
	challengeUpstreamSignup = "upstream_signup" // a verified stranger choosing a username
)

// upstreamFlow is what a started sign-in remembers, under SHA-256(state).
type upstreamFlow struct {
	Provider string `json:"provider"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"` // PKCE code verifier
	ReturnTo string `json:"return_to"`
	Binding  string `json:"binding"` // SHA-256 of the browser's flow cookie
	// LinkSID: a signed-in user's session linking this provider from the
	// account page; empty for a sign-in.
	LinkSID string `json:"link_sid,omitempty"`
}

// flowCookie names the cookie binding a flow to the browser that started
// it: SameSite=Lax, so that the provider's redirect back (a cross-site
// top-level GET) carries it, and so do the issuer's own pages after it.
func (s *Server) flowCookie() string {
	if s.cfg.Secure() {
		return "__Host-canopy-upstream"
	}
	return "canopy-upstream"
}

// flowBinding returns the browser's flow cookie value, setting a new one
// when it has none. Several tabs share one value, so flows started in
// parallel all work.
func (s *Server) flowBinding(c echo.Context) string {
	if ck, err := c.Cookie(s.flowCookie()); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	v := randomID(32)
	c.SetCookie(&http.Cookie{Name: s.flowCookie(), Value: v, Path: "/", MaxAge: int(upstreamTTL / time.Second),
		Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return v
}

// boundHere reports whether the browser holds the flow cookie whose hash is want.
func (s *Server) boundHere(c echo.Context, want string) bool {
	vals, _ := cookieValues(c, s.flowCookie(), maxAccessCookies)
	for _, v := range vals {
		if len(v) <= 64 && hashToken(v) == want {
			return true
		}
	}
	return false
}

// upstreamStart is GET /login/upstream/:name: it sends the browser to the
// provider's authorization endpoint.
func (s *Server) upstreamStart(c echo.Context) error {
	u, ok := s.upstreams[c.Param("name")]
	returnTo := s.returnTo(c.QueryParam("return_to"))
	if !ok {
		s.metrics.Upstream("", metrics.UpstreamUnknown)
		return s.upstreamPage(c, http.StatusNotFound, "Unknown sign-in provider",
			"This site has no sign-in provider of that name.", returnTo)
	}
	return s.startFlow(c, u, upstreamFlow{ReturnTo: returnTo}, c.QueryParam("prompt") == "login")
}

// startFlow records the flow and redirects to the provider.
func (s *Server) startFlow(c echo.Context, u *upstream, f upstreamFlow, reauth bool) error {
	_, oc, err := u.discover(c.Request().Context())
	if err != nil {
		return s.upstreamDown(c, u, f.ReturnTo, "discovery", err)
	}
	state, now := randomID(32), s.now()
	f.Provider, f.Nonce, f.Verifier = u.cfg.Name, randomID(32), oauth2.GenerateVerifier()
	f.Binding = hashToken(s.flowBinding(c))
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := s.store.PutChallenge(c.Request().Context(), store.Challenge{ID: hashToken(state), Kind: challengeUpstream,
		Data: string(data), CreatedAt: now, ExpiresAt: now.Add(upstreamTTL)}); err != nil {
		return fmt.Errorf("upstream flow: %w", err)
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier),
		oauth2.SetAuthURLParam("response_mode", "query")}
	if reauth {
		// Step-up and --max-auth-age: the provider must authenticate anew.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, oc.AuthCodeURL(state, opts...))
}

// errorCode is what of a provider's error parameter is shown and logged.
var errorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

// upstreamCallback is GET /login/upstream/:name/callback, where the
// provider sends the browser back.
func (s *Server) upstreamCallback(c echo.Context) error {
	name := c.Param("name")
	u, ok := s.upstreams[name]
	if !ok {
		s.metrics.Upstream("", metrics.UpstreamUnknown)
		s.log.Warn("upstream callback for a provider that is not configured", "idp", truncate(name, 40))
		return s.upstreamPage(c, http.StatusNotFound, "Unknown sign-in provider",
			"This site has no sign-in provider of that name.", "")
	}
	ctx := c.Request().Context()
	q := c.Request().URL.Query()
	state := q.Get("state")
	var f upstreamFlow
	ch, err := s.store.TakeChallenge(ctx, hashToken(state), s.now()) // single use, whatever happens next
	switch {
	case errors.Is(err, store.ErrNotFound) || state == "" || len(state) > 128:
		return s.upstreamRefused(c, u, metrics.UpstreamBadState, http.StatusBadRequest, "This sign-in has expired or was already used",
			"Please start again.", "", "unknown, expired or replayed state")
	case err != nil:
		return err
	}
	if ch.Kind != challengeUpstream || json.Unmarshal([]byte(ch.Data), &f) != nil || f.Provider != name {
		return s.upstreamRefused(c, u, metrics.UpstreamBadState, http.StatusBadRequest, "This sign-in has expired or was already used",
			"Please start again.", "", "state of another provider or kind")
	}
	if !s.boundHere(c, f.Binding) {
		return s.upstreamRefused(c, u, metrics.UpstreamBadState, http.StatusBadRequest, "This sign-in was started in another browser",
			"Please start again in this browser.", f.ReturnTo, "flow cookie missing or of another browser")
	}
	if e := q.Get("error"); e != "" {
		code := "error"
		if errorCode.MatchString(e) {
			code = e
		}
		return s.upstreamRefused(c, u, metrics.UpstreamDenied, http.StatusForbidden, u.cfg.Label()+" did not sign you in",
			fmt.Sprintf("%s answered %q.", u.cfg.Label(), code), f.ReturnTo, "provider error "+code)
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		return s.upstreamRefused(c, u, metrics.UpstreamInvalid, http.StatusBadRequest, "The sign-in could not be completed",
			u.cfg.Label()+" sent no authorization code.", f.ReturnTo, "no code")
	}
	id, err := s.exchange(ctx, u, f, code)
	if err != nil {
		var down downError
		if errors.As(err, &down) {
			return s.upstreamDown(c, u, f.ReturnTo, down.step, down.err)
		}
		return s.upstreamRefused(c, u, metrics.UpstreamInvalid, http.StatusBadRequest, "The sign-in could not be verified",
			"The answer from "+u.cfg.Label()+" was not valid. Please try again.", f.ReturnTo, err.Error())
	}
	return s.upstreamSignedIn(c, u, f, id)
}

// downError is a provider that did not answer, or answered garbage.
type downError struct {
	step string
	err  error
}

func (e downError) Error() string { return e.step + ": " + e.err.Error() }

// exchange redeems the code and verifies the id_token: signature, issuer,
// audience, expiry and algorithm by go-oidc, then the nonce and at_hash.
// A refusal of the token is an error; an unreachable or garbled provider
// a downError.
func (s *Server) exchange(parent context.Context, u *upstream, f upstreamFlow, code string) (*upstreamID, error) {
	verifier, oc, err := u.discover(parent)
	if err != nil {
		return nil, downError{"discovery", err}
	}
	ctx, cancel := u.ctx(parent)
	defer cancel()
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && re.ErrorCode != "" {
			// The provider refused the code: replayed, expired, another client's.
			return nil, fmt.Errorf("token endpoint refused the code: %s", re.ErrorCode)
		}
		return nil, downError{"token", err}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, downError{"token", errors.New("the token response has no id_token")}
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("id_token: %w", err)
	}
	if idt.Nonce != f.Nonce {
		return nil, errors.New("id_token: nonce mismatch")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("id_token: %w", err)
		}
	}
	id, err := s.readClaims(u, idt)
	if err != nil {
		return nil, err
	}
	if p := u.userInfoProvider(); p != nil && tok.AccessToken != "" && id.needUserInfo(u.cfg) {
		info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, downError{"userinfo", err}
		}
		if info.Subject != id.Subject {
			return nil, errors.New("userinfo: subject differs from the id_token's")
		}
		if err := id.merge(u.cfg, info); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// upstreamDown answers a provider that is down, slow or garbled: a page
// with a way back, the cause in the log, a count in the metrics.
func (s *Server) upstreamDown(c echo.Context, u *upstream, returnTo, step string, err error) error {
	s.metrics.Upstream(u.cfg.Name, metrics.UpstreamUnavailable)
	s.log.Warn("upstream provider unavailable", "idp", u.cfg.Name, "step", step, "err", err)
	return s.upstreamPage(c, http.StatusBadGateway, u.cfg.Label()+" is not answering",
		"The sign-in service of "+u.cfg.Label()+" did not answer in time or answered something unreadable. Please try again in a moment.", returnTo)
}

// upstreamRefused answers a refused sign-in: a page with a way back, the
// cause in the log, a count in the metrics.
func (s *Server) upstreamRefused(c echo.Context, u *upstream, outcome string, status int, title, msg, returnTo, cause string) error {
	s.metrics.Upstream(u.cfg.Name, outcome)
	s.log.Warn("upstream sign-in refused", "idp", u.cfg.Name, "outcome", outcome, "cause", cause)
	return s.upstreamPage(c, status, title, msg, returnTo)
}

// upstreamPage is a message page whose link goes back to the sign-in page.
func (s *Server) upstreamPage(c echo.Context, status int, title, msg, returnTo string) error {
	back := "/login"
	if returnTo != "" {
		back += "?return_to=" + url.QueryEscape(returnTo)
	}
	return s.page(c, status, &messageView{Title: title, Message: msg, Link: back, LinkText: "Back to sign-in"})
}
