// Package ssoecho runs the Canopy middleware of package ssohttp in echo:
// the same code, adapted, so that only a service built on echo imports it.
package ssoecho

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

// Wrap adapts net/http middleware from ssohttp.NewMiddleware or
// ssohttp.Middleware to echo, so both frameworks run one implementation.
// Handlers read the claims with ssohttp.ClaimsFrom(c.Request().Context()).
func Wrap(mw func(http.Handler) http.Handler) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		// Built once per route; the echo.Context of each request travels to
		// the inner handler in the request's context.
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			call := r.Context().Value(echoCallKey{}).(*echoCall)
			if w != http.ResponseWriter(call.c.Response()) {
				call.c.Response().Writer = w
			}
			call.c.SetRequest(r)
			call.err = next(call.c)
		}))
		return func(c echo.Context) error {
			call := &echoCall{c: c}
			r := c.Request()
			h.ServeHTTP(c.Response(), r.WithContext(context.WithValue(r.Context(), echoCallKey{}, call)))
			return call.err
		}
	}
}

type echoCallKey struct{}

// echoCall carries one request's echo.Context in, and its handler's error out.
type echoCall struct {
	c   echo.Context
	err error
}

// Middleware is ssohttp.Middleware for echo: the middleware of c, wrapped.
func Middleware(c *sso.Client, cfg ssohttp.MiddlewareConfig) (echo.MiddlewareFunc, error) {
	mw, err := ssohttp.Middleware(c, cfg)
	if err != nil {
		return nil, err
	}
	return Wrap(mw), nil
}
