package server

import (
	"context"
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
	d := s.domainOf(c)
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	c.Response().Header().Set("Access-Control-Allow-Origin", "*")
	if !d.primary {
		// The OpenID Provider is the primary's: another domain publishes
		// only what its relying services need.
		return c.JSON(http.StatusOK, wire.NewDiscovery(d.url, s.cookies.Access, d.cookieDomain))
	}
	return c.JSON(http.StatusOK, wire.NewProviderDiscovery(d.url, s.cookies.Access, d.cookieDomain))
}

// revokedFeed serves /sessions/revoked and revocationFeed
// /sessions/revocations, both from the feed cache: a poll costs no query
// unless a revocation was committed or the cache is older than feedTTL.
func (s *Server) revokedFeed(c echo.Context) error {
	return s.serveFeed(c, wire.PathRevocation, s.buildRevokedFeed)
}

func (s *Server) revocationFeed(c echo.Context) error {
	if c.QueryParams().Has(wire.QueryAfter) {
		return s.incrementalFeed(c)
	}
	return s.serveFeed(c, wire.PathRevocationV2, s.buildRevocationFeed)
}

// incrementalFeed serves ?after=CURSOR: the entries committed after it, a
// page at a time, from one range read of the log's primary key, so a poll
// with nothing new costs the same however full the window is.
func (s *Server) incrementalFeed(c echo.Context) error {
	ctx := c.Request().Context()
	after, ok := parseCursor(c.QueryParam(wire.QueryAfter))
	if !ok {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "invalid_cursor"})
	}
	list, err := s.store.RevocationsAfter(ctx, after, hubPage)
	if err != nil {
		return err
	}
	if len(list) == 0 && after > s.hub.knownHead() {
		// Ahead of this instance's hub: another instance's commit, or a
		// cursor from another database, which the reader must drop.
		head, err := s.store.RevocationHead(ctx)
		if err != nil {
			return err
		}
		if after > head {
			return c.JSON(http.StatusGone, map[string]string{"error": "cursor_unknown"})
		}
	}
	feed := wire.RevocationFeed{Revocations: make([]wire.Revocation, len(list)), Cursor: formatCursor(after), More: len(list) == hubPage}
	for i, l := range list {
		feed.Revocations[i] = wireRevocation(l)
	}
	if len(list) > 0 {
		feed.Cursor = formatCursor(list[len(list)-1].Pos)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, feed)
}

func (s *Server) serveFeed(c echo.Context, name string, build func(context.Context) (any, error)) error {
	body, etag, err := s.feeds.get(c.Request().Context(), name, build)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if etagMatch(c, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}
