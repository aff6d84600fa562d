package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// This file is the OpenID Provider's authorization endpoint (OIDC Core
// §3.1.2, RFC 6749 §4.1, PKCE RFC 7636): the code flow only.

// codeTTL is how long an authorization code may be redeemed.
const codeTTL = 60 * time.Second

// The authorize request's own parameters that Canopy adds to the URL the
// browser comes back to after signing in. roundParam counts sign-in round
// trips (a browser that keeps no session cookie must not loop);
// authAfterParam is the moment a prompt=login or max_age sign-in started:
// the session must have signed in after it.
const (
	roundParam     = "canopy_round"
	authAfterParam = "canopy_auth_after"
)

// pathAuthorizeContinue is where a sign-in started by /authorize returns:
// a page that goes on to /authorize by a Refresh, not by the form's own
// redirects. A browser applies the sign-in page's CSP form-action to every
// redirect that follows the form's POST, and the last one leaves for the
// client's redirect URI, which form-action does not list.
const pathAuthorizeContinue = "/authorize/continue"

// routeProvider adds the OpenID Provider's endpoints.
func (s *Server) routeProvider(e *echo.Echo) {
	e.GET(wire.PathAuthorize, s.authorize)
	e.GET(pathAuthorizeContinue, s.authorizeContinue)
	e.POST(wire.PathToken, s.token)
	e.OPTIONS(wire.PathToken, s.providerPreflight)
	e.GET(wire.PathUserinfo, s.userinfo)
	e.POST(wire.PathUserinfo, s.userinfo)
	e.OPTIONS(wire.PathUserinfo, s.providerPreflight)
	e.GET(wire.PathEndSession, s.endSession)
}

// authRequest is a parsed authorization request.
type authRequest struct {
	client        store.Client
	redirectURI   string
	state, nonce  string
	scope         []string
	codeChallenge string
	prompt        []string
	maxAge        int      // -1: absent
	acrValues     []string // the known classes of acr_values, in order
	authAfter     int64
	round         int
}

// authorize handles GET /authorize. Until the client and its redirect URI
// are known to match, errors are a page: redirecting them would make the
// issuer an open redirector.
func (s *Server) authorize(c echo.Context) error {
	q := c.Request().URL.Query()
	for k, v := range q {
		if len(v) > 1 {
			return s.authorizeErrorPage(c, "The sign-in request repeats the parameter "+strconv.Quote(k)+".")
		}
	}
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if clientID == "" {
		return s.authorizeErrorPage(c, "The sign-in request names no application (client_id).")
	}
	client, err := s.clientByID(c.Request().Context(), clientID)
	if errors.Is(err, store.ErrNotFound) {
		return s.authorizeErrorPage(c, "The application asking you to sign in is not registered here.")
	}
	if err != nil {
		return err
	}
	if redirectURI == "" || !slices.Contains(client.RedirectURIs, redirectURI) {
		return s.authorizeErrorPage(c, "The application asked to send you back to an address it has not registered (redirect_uri).")
	}
	r := &authRequest{client: client, redirectURI: redirectURI, state: q.Get("state"), nonce: q.Get("nonce"), maxAge: -1}
	if code, desc := s.parseAuthRequest(q, r); code != "" {
		return s.authorizeRedirectError(c, r, code, desc)
	}
	cur, signedIn := s.accountSession(c)
	needLogin := !signedIn || slices.Contains(r.prompt, "login") ||
		r.maxAge == 0 || (r.maxAge > 0 && s.now().Sub(cur.Session.AuthTime) > time.Duration(r.maxAge)*time.Second)
	fresh := signedIn && r.authAfter > 0 && cur.Session.AuthTime.Unix() >= r.authAfter
	if fresh {
		needLogin = false // back from the sign-in this request asked for
	}
	if needLogin {
		if slices.Contains(r.prompt, "none") {
			return s.authorizeRedirectError(c, r, "login_required", "the user is not signed in, or the sign-in is too old")
		}
		return s.authorizeSignIn(c, r, signedIn)
	}
	ctx := c.Request().Context()
	amr, err := s.store.SessionAMR(ctx, cur.Session.ID)
	if err != nil {
		return fmt.Errorf("session amr: %w", err)
	}
	if amr == nil {
		amr = []string{wire.AMRPassword} // sessions from before methods were recorded
	}
	acr := firstACRMet(r.acrValues, amr)
	if len(r.acrValues) > 0 && acr == "" {
		// Step up: a fresh sign-in, which asks for the second factor,
		// unless the client wants no page or the account has no factor
		// that could do.
		if slices.Contains(r.prompt, "none") {
			return s.authorizeRedirectError(c, r, "login_required", "the sign-in does not meet acr_values; a new one is needed")
		}
		can, err := s.canStepUp(ctx, cur.User.ID, r.acrValues)
		if err != nil {
			return err
		}
		if fresh || !can {
			s.event(c, "oidc_denied", cur.User, cur.Session.ID, "client "+r.client.Name+": acr_values "+strings.Join(r.acrValues, " ")+" not met")
			return s.authorizeRedirectError(c, r, "unmet_authentication_requirements",
				"the sign-in cannot meet acr_values "+strings.Join(r.acrValues, " ")+" (a passkey for phr; a passkey or an authenticator code for mfa)")
		}
		return s.authorizeSignIn(c, r, true)
	}
	if len(r.client.RequireGroups) > 0 {
		groups, err := s.store.Groups(c.Request().Context(), cur.User.ID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(r.client.RequireGroups, g) }) {
			s.event(c, "oidc_denied", cur.User, cur.Session.ID, "client "+r.client.Name+": not in a required group")
			return s.authorizeRedirectError(c, r, "access_denied", "the user is not in a group this application requires")
		}
	}
	code, err := s.issueCode(ctx, r, cur, amr, acr)
	if err != nil {
		return err
	}
	s.event(c, "oidc_authorize", cur.User, cur.Session.ID, "client "+r.client.Name)
	return s.authorizeRedirect(c, r, url.Values{"code": {code}})
}

// parseAuthRequest checks what may be answered with an error redirect.
func (s *Server) parseAuthRequest(q url.Values, r *authRequest) (string, string) {
	if q.Get("request") != "" {
		return "request_not_supported", "request objects are not supported"
	}
	if q.Get("request_uri") != "" {
		return "request_uri_not_supported", "request_uri is not supported"
	}
	if rt := q.Get("response_type"); rt != "code" {
		return "unsupported_response_type", "only response_type=code is supported"
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return "invalid_request", "only response_mode=query is supported"
	}
	r.scope = strings.Fields(q.Get("scope"))
	if !slices.Contains(r.scope, wire.ScopeOpenID) {
		return "invalid_scope", "the openid scope is required"
	}
	r.codeChallenge = q.Get("code_challenge")
	method := q.Get("code_challenge_method")
	switch {
	case r.codeChallenge == "" && method != "":
		return "invalid_request", "code_challenge_method without code_challenge"
	case r.codeChallenge != "" && method != "S256":
		return "invalid_request", "code_challenge_method must be S256"
	case r.codeChallenge != "" && !validPKCEChallenge(r.codeChallenge):
		return "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
	case r.codeChallenge == "" && r.client.Public:
		return "invalid_request", "PKCE (code_challenge with S256) is required for this client"
	}
	if len(r.nonce) > 512 || len(r.state) > 2048 {
		return "invalid_request", "nonce or state too long"
	}
	r.prompt = strings.Fields(q.Get("prompt"))
	for _, p := range r.prompt {
		if p != "none" && p != "login" && p != "consent" && p != "select_account" {
			return "invalid_request", "unknown prompt value " + strconv.Quote(p)
		}
	}
	if slices.Contains(r.prompt, "none") && len(r.prompt) > 1 {
		return "invalid_request", "prompt=none cannot be combined with other values"
	}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return "invalid_request", "max_age must be a non-negative integer"
		}
		r.maxAge = n
	}
	r.acrValues = parseACRValues(q.Get("acr_values"))
	r.authAfter = s.checkAuthAfter(q.Get(authAfterParam))
	r.round, _ = strconv.Atoi(q.Get(roundParam))
	return "", ""
}

// signAuthAfter makes the authAfterParam value: the time and an HMAC of it,
// so that nobody can write a marker that waives prompt=login or max_age.
func (s *Server) signAuthAfter(t int64) string {
	v := strconv.FormatInt(t, 10)
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("canopy authorize after\x00" + v))
	return v + "." + rawURL(m.Sum(nil))
}

// checkAuthAfter returns the time of a marker signAuthAfter made, else 0.
func (s *Server) checkAuthAfter(v string) int64 {
	t, _, ok := strings.Cut(v, ".")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || !hmac.Equal([]byte(s.signAuthAfter(n)), []byte(v)) {
		return 0
	}
	return n
}

// validPKCEChallenge accepts a base64url SHA-256: 43 characters of the
// unpadded base64url alphabet (RFC 7636 §4.2).
func validPKCEChallenge(v string) bool {
	if len(v) != 43 {
		return false
	}
	return strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// authorizeSignIn sends the browser to the sign-in form and back to this
// authorize request. A prompt=login, a max_age exceeded or a browser with
// an old session asks for a fresh sign-in that the returning request
// checks (authAfterParam). A browser that comes back without a session
// twice keeps no cookies: it gets a page, not a loop.
func (s *Server) authorizeSignIn(c echo.Context, r *authRequest, signedIn bool) error {
	if r.round >= 2 {
		return s.authorizeErrorPage(c, "Signing in did not stick: your browser may be blocking this site's cookies.")
	}
	back := *c.Request().URL
	q := back.Query()
	q.Set(roundParam, strconv.Itoa(r.round+1))
	reauth := signedIn || r.round > 0
	q.Set(authAfterParam, s.signAuthAfter(s.now().Unix()))
	back.RawQuery = q.Encode()
	returnTo := s.cfg.URL + pathAuthorizeContinue + "?" + back.RawQuery
	login := url.Values{"return_to": {returnTo}}
	if reauth {
		login.Set("prompt", "login")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, wire.PathLogin+"?"+login.Encode())
}

// authorizeContinue sends the browser on to /authorize with the same
// parameters, by a Refresh header (with a link for browsers that ignore
// it). The query is re-encoded, so nothing but percent-encoded parameters
// reaches the header.
func (s *Server) authorizeContinue(c echo.Context) error {
	target := wire.PathAuthorize + "?" + c.Request().URL.Query().Encode()
	c.Response().Header().Set("Refresh", "0; url="+target)
	return s.page(c, http.StatusOK, &messageView{Title: "Signed in", Message: "Taking you back to the application…",
		Link: target, LinkText: "Continue to the application"})
}

// issueCode stores a new code for the session and returns it.
func (s *Server) issueCode(ctx context.Context, r *authRequest, cur *current, amr []string, acr string) (string, error) {
	code := randomID(32)
	now := s.now()
	ac := store.AuthCode{
		Hash: hashToken(code), ClientID: r.client.ID, UserID: cur.User.ID, SessionID: cur.Session.ID,
		RedirectURI: r.redirectURI, Scope: strings.Join(r.scope, " "), Nonce: r.nonce, CodeChallenge: r.codeChallenge,
		AuthTime: cur.Session.AuthTime, AMR: amr, ACR: acr, CreatedAt: now, ExpiresAt: now.Add(codeTTL),
	}
	err := s.store.CreateCode(ctx, ac)
	if errors.Is(err, store.ErrNotFound) && s.internalClient(r.client.ID) != nil {
		// Another domain's client row was removed (issuer client remove):
		// put it back, as a start would.
		if err = s.ensureInternalClients(ctx); err == nil {
			err = s.store.CreateCode(ctx, ac)
		}
	}
	if err != nil {
		return "", fmt.Errorf("store code: %w", err)
	}
	return code, nil
}

// authorizeRedirect sends the browser back to the client's registered
// redirect URI with params, state and iss (RFC 9207) added.
func (s *Server) authorizeRedirect(c echo.Context, r *authRequest, params url.Values) error {
	u, err := url.Parse(r.redirectURI)
	if err != nil {
		return err // registered URIs were checked at registration
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if r.state != "" {
		q.Set("state", r.state)
	}
	q.Set("iss", s.cfg.URL)
	u.RawQuery = q.Encode()
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, u.String())
}

func (s *Server) authorizeRedirectError(c echo.Context, r *authRequest, code, desc string) error {
	return s.authorizeRedirect(c, r, url.Values{"error": {code}, "error_description": {desc}})
}

// authorizeErrorPage shows an error that cannot go back to the client.
func (s *Server) authorizeErrorPage(c echo.Context, msg string) error {
	return s.page(c, http.StatusBadRequest, &messageView{Title: "This sign-in request cannot be completed", Message: msg,
		Link: "/", LinkText: "Go to your account"})
}
