package ssoecho_test

import (
	"context"
	"log"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssoecho"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

// The same middleware in echo.
func ExampleMiddleware() {
	client, err := sso.New(context.Background(), sso.Options{Issuer: "http://domain.localhost:8080"})
	if err != nil {
		log.Fatal(err)
	}
	mw, err := ssoecho.Middleware(client, ssohttp.MiddlewareConfig{})
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.Use(mw)
	e.GET("/", func(c echo.Context) error {
		claims, _ := ssohttp.ClaimsFrom(c.Request().Context())
		return c.String(http.StatusOK, "Hello, "+claims.Username)
	})
}
