package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/clients"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// This file is the OpenID Provider's token endpoint (RFC 6749 §4.1.3,
// §5; PKCE RFC 7636 §4.6; OIDC Core §3.1.3).

// tokenError is an error response of the token endpoint (RFC 6749 §5.2).
type tokenError struct {
	status      int
	code, desc  string
	basicScheme bool // the client tried HTTP Basic: 401 names the scheme
}

func (s *Server) tokenFail(c echo.Context, e tokenError) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.status == http.StatusUnauthorized && e.basicScheme {
		h.Set("WWW-Authenticate", `Basic realm="canopy"`)
	}
	return c.JSON(e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func invalidGrant(desc string) tokenError {
	return tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
}

// tokenResponse is RFC 6749 §5.1 with OIDC's id_token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope"`
	// RefreshToken is issued for scope offline_access.
	RefreshToken string `json:"refresh_token,omitempty"`
}

// idTokenClaims are the ID token's claims (OIDC Core §2). aud is the
// client_id and typ is JWT: pkg/sso, which wants the cookie domain and
// at+jwt, refuses an ID token.
type idTokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	AZP       string   `json:"azp"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	AuthTime  int64    `json:"auth_time"`
	Nonce     string   `json:"nonce,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	SessionID string   `json:"sid"`
	Username  string   `json:"preferred_username,omitempty"`
	Email     string   `json:"email,omitempty"`
	// EmailVerified is true whenever Email is set: only addresses an
	// upstream provider verified are kept.
	EmailVerified bool     `json:"email_verified,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// token handles POST /token: grant_type authorization_code and refresh_token.
func (s *Server) token(c echo.Context) error {
	c.Response().Header().Set("Access-Control-Allow-Origin", "*")
	req := c.Request()
	if err := req.ParseForm(); err != nil {
		return s.tokenFail(c, tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "the body is not a form"})
	}
	form := req.PostForm
	for k, v := range form {
		if len(v) > 1 {
			return s.tokenFail(c, tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "repeated parameter " + k})
		}
	}
	client, terr := s.authenticateClient(c, form)
	if terr != nil {
		return s.tokenFail(c, *terr)
	}
	switch form.Get("grant_type") {
	case "authorization_code":
	case "refresh_token":
		return s.refreshGrant(c, client, form)
	default:
		return s.tokenFail(c, tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "grant_type must be authorization_code or refresh_token"})
	}
	ctx := req.Context()
	now := s.now()
	codeHash := hashToken(form.Get("code"))
	code, err := s.store.RedeemCode(ctx, codeHash, now)
	switch {
	case errors.Is(err, store.ErrReuse):
		s.log.Warn("authorization code replayed; its tokens are revoked", "client", client.Name)
		return s.tokenFail(c, invalidGrant("the code was used already; what it issued is revoked"))
	case errors.Is(err, store.ErrNotFound):
		return s.tokenFail(c, invalidGrant("unknown code"))
	case err != nil:
		return err
	}
	switch {
	case code.ClientID != client.ID:
		return s.tokenFail(c, invalidGrant("the code was issued to another client"))
	case !now.Before(code.ExpiresAt):
		return s.tokenFail(c, invalidGrant("the code has expired"))
	case form.Get("redirect_uri") != code.RedirectURI:
		return s.tokenFail(c, invalidGrant("redirect_uri differs from the authorization request's"))
	}
	if terr := checkPKCE(code.CodeChallenge, form.Get("code_verifier")); terr != nil {
		return s.tokenFail(c, *terr)
	}
	g := grant{client: client, userID: code.UserID, sessionID: code.SessionID, scope: code.Scope, nonce: code.Nonce,
		authTime: code.AuthTime, amr: code.AMR, acr: code.ACR, family: codeHash}
	if slices.Contains(strings.Fields(code.Scope), wire.ScopeOfflineAccess) {
		g.refresh = randomID(32)
		err := s.store.CreateClientRefresh(ctx, store.ClientRefresh{Hash: hashToken(g.refresh), FamilyID: codeHash, ClientID: client.ID,
			UserID: code.UserID, SessionID: code.SessionID, Scope: code.Scope, AuthTime: code.AuthTime, AMR: code.AMR, ACR: code.ACR, CreatedAt: now})
		if err != nil {
			return err
		}
	}
	return s.issueTokens(c, g)
}

// grant is what a token response is issued for: a redeemed code or a
// rotated refresh token.
type grant struct {
	client            store.Client
	userID, sessionID string
	scope, nonce      string
	authTime          time.Time
	amr               []string
	acr               string // the acr_values class met, if any was asked for
	family            string // the code's hash: its replay revokes these tokens
	refresh           string // the refresh token to hand out, if any
}

// issueTokens checks that the session and the user still stand and answers
// with an ID token and an access token (and the refresh token of g).
func (s *Server) issueTokens(c echo.Context, g grant) error {
	ctx := c.Request().Context()
	now := s.now()
	sess, err := s.store.Session(ctx, g.sessionID)
	if err != nil || !sess.Active(now, s.cfg.IdleTTL) {
		return s.tokenFail(c, invalidGrant("the sign-in session has ended"))
	}
	u, err := s.store.UserByID(ctx, g.userID)
	if err != nil || u.Disabled {
		return s.tokenFail(c, invalidGrant("the user cannot sign in"))
	}
	scope := strings.Fields(g.scope)
	var groups []string
	if slices.Contains(scope, wire.ScopeGroups) {
		if groups, err = s.store.Groups(ctx, u.ID); err != nil {
			return err
		}
	}
	exp := now.Add(s.cfg.AccessTTL)
	if exp.After(sess.ExpiresAt) {
		exp = sess.ExpiresAt
	}
	claims := idTokenClaims{
		Issuer: s.cfg.URL, Subject: u.ID, Audience: g.client.ID, AZP: g.client.ID,
		Expiry: exp.Unix(), IssuedAt: now.Unix(), AuthTime: g.authTime.Unix(),
		Nonce: g.nonce, AMR: g.amr, ACR: g.acr, SessionID: sess.ID, Groups: groups,
	}
	if slices.Contains(scope, wire.ScopeProfile) {
		claims.Username = u.Username
	}
	if slices.Contains(scope, wire.ScopeEmail) {
		if claims.Email, err = s.verifiedEmail(ctx, u.ID); err != nil {
			return err
		}
		claims.EmailVerified = claims.Email != ""
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return err
	}
	idToken, err := s.keys.SignAs(g.client.IDTokenAlg, wire.IDTokenType, payload)
	if err != nil {
		return err
	}
	access := randomID(32)
	err = s.store.CreateClientToken(ctx, store.ClientToken{Hash: hashToken(access), CodeHash: g.family, ClientID: g.client.ID,
		UserID: u.ID, SessionID: sess.ID, Scope: g.scope, CreatedAt: now, ExpiresAt: exp})
	if errors.Is(err, store.ErrSessionEnded) {
		// Ended since the check above: the revocation did not see this
		// client, so it gets no token.
		return s.tokenFail(c, invalidGrant("the sign-in session has ended"))
	}
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, tokenResponse{AccessToken: access, TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(now).Seconds()), IDToken: idToken, Scope: g.scope, RefreshToken: g.refresh})
}

// refreshGrant handles grant_type=refresh_token (RFC 6749 §6): the token
// rotates at each use; a superseded one presented again revokes its family
// (RFC 9700 §4.14.2). A refresh token lives as long as the Canopy session
// it was issued in: when the session ends, so does the client's access.
func (s *Server) refreshGrant(c echo.Context, client store.Client, form url.Values) error {
	presented := form.Get("refresh_token")
	if presented == "" {
		return s.tokenFail(c, tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "refresh_token is required"})
	}
	successor := randomID(32)
	rec, err := s.store.RotateClientRefresh(c.Request().Context(), client.ID, hashToken(presented), hashToken(successor), s.now())
	switch {
	case errors.Is(err, store.ErrReuse):
		s.log.Warn("client refresh token reused; its family is revoked", "client", client.Name)
		return s.tokenFail(c, invalidGrant("the refresh token was used already; its tokens are revoked"))
	case errors.Is(err, store.ErrNotFound):
		return s.tokenFail(c, invalidGrant("unknown or revoked refresh token"))
	case err != nil:
		return err
	}
	if asked := strings.Fields(form.Get("scope")); len(asked) > 0 {
		have := strings.Fields(rec.Scope)
		for _, sc := range asked {
			if !slices.Contains(have, sc) {
				return s.tokenFail(c, tokenError{status: http.StatusBadRequest, code: "invalid_scope", desc: "scope " + sc + " was not granted"})
			}
		}
	}
	return s.issueTokens(c, grant{client: client, userID: rec.UserID, sessionID: rec.SessionID, scope: rec.Scope,
		authTime: rec.AuthTime, amr: rec.AMR, acr: rec.ACR, family: rec.FamilyID, refresh: successor})
}

// authenticateClient finds the client of a token request: HTTP Basic
// (client_secret_basic, RFC 6749 §2.3.1: both halves form-encoded) or
// client_id and client_secret in the form (client_secret_post), never
// both; a public client sends client_id alone and proves itself with PKCE.
func (s *Server) authenticateClient(c echo.Context, form url.Values) (store.Client, *tokenError) {
	id, secret, basic := c.Request().BasicAuth()
	unauthorized := &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed", basicScheme: basic}
	if basic {
		if form.Get("client_secret") != "" {
			return store.Client{}, &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "use one client authentication method"}
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return store.Client{}, unauthorized
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return store.Client{}, &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "client_id differs from the authenticated client"}
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" || strings.HasPrefix(id, internalClientPrefix) {
		// Another domain's hop redeems its codes itself, never here.
		return store.Client{}, unauthorized
	}
	client, err := s.store.ClientByID(c.Request().Context(), id)
	if err != nil {
		// The same answer as a wrong secret: which client ids exist is
		// nobody's business.
		return store.Client{}, unauthorized
	}
	if client.Public {
		if secret != "" || basic {
			return store.Client{}, unauthorized
		}
		return client, nil
	}
	if !clients.SecretMatches(client, secret) {
		return store.Client{}, unauthorized
	}
	return client, nil
}

// checkPKCE verifies code_verifier against the code's S256 challenge. A
// code without a challenge (a confidential client that sent none) takes no
// verifier: one sent anyway is an attempt to downgrade (RFC 9700 §2.1.1).
func checkPKCE(challenge, verifier string) *tokenError {
	if challenge == "" {
		if verifier != "" {
			e := invalidGrant("code_verifier for a code issued without code_challenge")
			return &e
		}
		return nil
	}
	if verifier == "" {
		e := invalidGrant("code_verifier is required")
		return &e
	}
	if len(verifier) < 43 || len(verifier) > 128 || strings.Trim(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "" {
		e := invalidGrant("code_verifier must be 43 to 128 unreserved characters")
		return &e
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) != 1 {
		e := invalidGrant("code_verifier does not match code_challenge")
		return &e
	}
	return nil
}

// userinfo handles GET and POST /userinfo with a client's bearer access
// token (OIDC Core §5.3).
func (s *Server) userinfo(c echo.Context) error {
	c.Response().Header().Set("Access-Control-Allow-Origin", "*")
	fail := func(desc string) error {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="canopy", error="invalid_token", error_description="`+desc+`"`)
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
	}
	scheme, tok, _ := strings.Cut(c.Request().Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="canopy"`)
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "a bearer access token is required"})
	}
	ctx := c.Request().Context()
	now := s.now()
	t, err := s.store.ClientToken(ctx, hashToken(strings.TrimSpace(tok)), now)
	if errors.Is(err, store.ErrNotFound) {
		return fail("unknown, expired or revoked token")
	}
	if err != nil {
		return err
	}
	sess, err := s.store.Session(ctx, t.SessionID)
	if err != nil || !sess.Active(now, s.cfg.IdleTTL) {
		return fail("the sign-in session has ended")
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if err != nil || u.Disabled {
		return fail("the user cannot sign in")
	}
	out := map[string]any{"sub": u.ID}
	scope := strings.Fields(t.Scope)
	if slices.Contains(scope, wire.ScopeProfile) {
		out["preferred_username"] = u.Username
	}
	if slices.Contains(scope, wire.ScopeGroups) {
		groups, err := s.store.Groups(ctx, u.ID)
		if err != nil {
			return err
		}
		out["groups"] = append([]string{}, groups...)
	}
	if slices.Contains(scope, wire.ScopeEmail) {
		email, err := s.verifiedEmail(ctx, u.ID)
		if err != nil {
			return err
		}
		if email != "" {
			out["email"], out["email_verified"] = email, true
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// providerPreflight answers CORS preflights of /token and /userinfo for
// browser-based (public) clients. No cookie is involved, so any origin may
// call them, without credentials.
func (s *Server) providerPreflight(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	return c.NoContent(http.StatusNoContent)
}

// verifiedEmail is the user's email for the email scope: the address an
// upstream provider marked verified when the account was linked to it (the
// oldest such link), "" when there is none. Canopy accounts have no email
// of their own.
func (s *Server) verifiedEmail(ctx context.Context, userID string) (string, error) {
	ids, err := s.store.Identities(ctx, userID)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if id.Email != "" {
			return id.Email, nil
		}
	}
	return "", nil
}
