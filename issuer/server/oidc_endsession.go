package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// endSession handles GET /end-session (OpenID RP-Initiated Logout 1.0): the
// post_logout_redirect_uri must be registered for the client named by
// client_id or by the audience of id_token_hint (an ID token this issuer
// signed, expired or not; both must agree when both are sent); then the
// browser gets the issuer's sign-out confirmation, which returns there
// afterwards when the URI is under the cookie domain (others land on the
// account page).
func (s *Server) endSession(c echo.Context) error {
	q := c.Request().URL.Query()
	post := q.Get("post_logout_redirect_uri")
	logout := url.Values{}
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		aud, ok := s.hintAudience(hint)
		if !ok || (clientID != "" && clientID != aud) {
			return s.endSessionErrorPage(c, "The sign-out request carries an ID token this service did not issue to that application (id_token_hint).")
		}
		clientID = aud
	}
	if post != "" {
		if clientID == "" {
			return s.endSessionErrorPage(c, "The application asked to send you back after signing out but did not say who it is (client_id or id_token_hint).")
		}
		client, err := s.store.ClientByID(c.Request().Context(), clientID)
		if errors.Is(err, store.ErrNotFound) {
			return s.endSessionErrorPage(c, "The application asking you to sign out is not registered here.")
		}
		if err != nil {
			return err
		}
		if !slices.Contains(client.PostLogoutRedirectURIs, post) {
			return s.endSessionErrorPage(c, "The application asked to send you back to an address it has not registered (post_logout_redirect_uri).")
		}
		back := post
		if st := q.Get("state"); st != "" {
			if u, err := url.Parse(post); err == nil {
				v := u.Query()
				v.Set("state", st)
				u.RawQuery = v.Encode()
				back = u.String()
			}
		}
		logout.Set("return_to", back)
	}
	target := wire.PathLogout
	if len(logout) > 0 {
		target += "?" + logout.Encode()
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, target)
}

func (s *Server) endSessionErrorPage(c echo.Context, msg string) error {
	return s.page(c, http.StatusBadRequest, &messageView{Title: "This sign-out request cannot be completed", Message: msg,
		Link: "/", LinkText: "Go to your account"})
}

// hintAudience verifies an id_token_hint with the published keys (the
// header's kid picks a key; the key's own algorithm must be the header's)
// and returns its aud when its iss is this issuer. Expiry is not checked:
// RP-initiated logout accepts an expired hint.
func (s *Server) hintAudience(hint string) (string, bool) {
	if len(hint) > 8192 {
		return "", false
	}
	jws, err := jose.ParseSignedCompact(hint, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return "", false
	}
	hdr := jws.Signatures[0].Header
	body, _ := s.keys.JWKS()
	var set jose.JSONWebKeySet
	if json.Unmarshal(body, &set) != nil {
		return "", false
	}
	found := set.Key(hdr.KeyID)
	if len(found) != 1 || found[0].Algorithm != hdr.Algorithm || hdr.ExtraHeaders["typ"] != wire.IDTokenType {
		return "", false
	}
	payload, err := jws.Verify(found[0].Key)
	if err != nil {
		return "", false
	}
	var claims struct {
		Issuer   string `json:"iss"`
		Audience string `json:"aud"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Issuer != s.cfg.URL || claims.Audience == "" {
		return "", false
	}
	return claims.Audience, true
}
