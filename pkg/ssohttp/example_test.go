package ssohttp_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

// Protect a net/http mux: every page needs a Canopy sign-in, and each user's
// host belongs to that user alone.
func ExampleMiddleware() {
	ctx := context.Background()
	client, err := sso.New(ctx, sso.Options{Issuer: "http://domain.localhost:8080"})
	if err != nil {
		log.Fatal(err) // only bad options fail; an unreachable issuer is retried
	}
	defer client.Close()

	protect, err := ssohttp.Middleware(client, ssohttp.MiddlewareConfig{
		Authorize: func(r *http.Request, c *sso.Claims) error {
			if owner, _, _ := strings.Cut(r.Host, "."); owner != c.Username {
				return &ssohttp.ForbiddenError{Message: "This page belongs to " + owner + "."}
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := ssohttp.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "Hello, %s!", claims.Username)
	})))
	mux.Handle(ssohttp.RefreshScriptPath, ssohttp.RefreshScriptHandler(client))
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", mux))
}

// Read the claims the middleware verified, and let the page keep its token
// fresh with the refresh script.
func ExampleClaimsFrom() {
	page := func(w http.ResponseWriter, r *http.Request) {
		claims, ok := ssohttp.ClaimsFrom(r.Context())
		if !ok {
			http.Error(w, "not signed in", http.StatusUnauthorized) // only behind Optional or a Skipper
			return
		}
		fmt.Fprintf(w, "<p>Signed in as %s (session %s)</p>%s", claims.Username, claims.SessionID,
			ssohttp.RefreshScriptTag(ssohttp.RefreshScriptPath, claims, time.Now()))
	}
	_ = http.HandlerFunc(page)
}
