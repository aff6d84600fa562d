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

	"github.com/canopy-sso/canopy/pkg/wire"
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

func (s *Server) discovery(c echo.Context) error {
	u := s.cfg.URL
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	c.Response().Header().Set("Access-Control-Allow-Origin", "*")
	return c.JSON(http.StatusOK, wire.NewDiscovery(u, s.cookies.Access, s.cfg.CookieDomain))
}

func (s *Server) revokedFeed(c echo.Context) error {
	list, err := s.store.RevokedSince(c.Request().Context(), s.now().Add(-revokedWindow))
	if err != nil {
		return err
	}
	out := wire.RevokedFeed{Revoked: make([]wire.RevokedEntry, 0, len(list))}
	for _, r := range list {
		out.Revoked = append(out.Revoked, wire.RevokedEntry{SID: r.SID, Until: r.Until.Unix()})
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
