package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// revokedWindow is how far back the revocation feed reaches (SPEC.md).
const revokedWindow = 10 * time.Minute

// etagMatch reports whether If-None-Match names etag (or is "*").
func etagMatch(c echo.Context, etag string) bool {
	inm := c.Request().Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for _, part := range strings.Split(inm, ",") {
		part = strings.TrimSpace(part)
		if part == etag || part == "W/"+etag || part == "*" {
			return true
		}
	}
	return false
}

func (s *Server) jwks(c echo.Context) error {
	body, etag := s.keys.JWKS()
	h := c.Response().Header()
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(s.cfg.JWKSMaxAge/time.Second)))
	h.Set("ETag", etag)
	h.Set("Access-Control-Allow-Origin", "*")
	if etagMatch(c, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "application/jwk-set+json", body)
}

// Discovery is the document at /.well-known/openid-configuration.
type Discovery struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	Algs          []string `json:"id_token_signing_alg_values_supported"`
	CookieName    string   `json:"canopy_cookie_name"`
	CookieDomain  string   `json:"canopy_cookie_domain"`
	RevocationURI string   `json:"canopy_revocation_uri"`
	RefreshURI    string   `json:"canopy_refresh_uri"`
	LoginURI      string   `json:"canopy_login_uri"`
	LogoutURI     string   `json:"canopy_logout_uri"`
}

func (s *Server) discovery(c echo.Context) error {
	u := s.cfg.URL
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	c.Response().Header().Set("Access-Control-Allow-Origin", "*")
	return c.JSON(http.StatusOK, Discovery{
		Issuer: u, JWKSURI: u + "/.well-known/jwks.json", Algs: []string{"EdDSA", "ES256"},
		CookieName: s.cookies.Access, CookieDomain: s.cfg.CookieDomain,
		RevocationURI: u + "/sessions/revoked", RefreshURI: u + "/refresh", LoginURI: u + "/login",
		LogoutURI: u + "/logout",
	})
}

type revokedEntry struct {
	SID   string `json:"sid"`
	Until int64  `json:"until"`
}

func (s *Server) revokedFeed(c echo.Context) error {
	list, err := s.store.RevokedSince(c.Request().Context(), s.now().Add(-revokedWindow))
	if err != nil {
		return err
	}
	out := struct {
		Revoked []revokedEntry `json:"revoked"`
	}{Revoked: make([]revokedEntry, 0, len(list))}
	for _, r := range list {
		out.Revoked = append(out.Revoked, revokedEntry{SID: r.SID, Until: r.Until.Unix()})
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if etagMatch(c, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}
