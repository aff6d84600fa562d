package sso_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// Protect a net/http mux: every page needs a Canopy sign-in, and each user's
// host belongs to that user alone.
func ExampleNew() {
	ctx := context.Background()
	client, err := sso.New(ctx, sso.Options{Issuer: "http://domain.localhost:8080"})
	if err != nil {
		log.Fatal(err) // only bad options fail; an unreachable issuer is retried
	}
	defer client.Close()

	protect, err := client.Middleware(sso.MiddlewareConfig{
		Authorize: func(r *http.Request, c *sso.Claims) error {
			if owner, _, _ := strings.Cut(r.Host, "."); owner != c.Username {
				return &sso.ForbiddenError{Message: "This page belongs to " + owner + "."}
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := sso.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "Hello, %s!", claims.Username)
	})))
	mux.Handle(sso.RefreshScriptPath, client.RefreshScriptHandler())
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", mux))
}

// Read the claims the middleware verified, and let the page keep its token
// fresh with the refresh script.
func ExampleClaimsFrom() {
	page := func(w http.ResponseWriter, r *http.Request) {
		claims, ok := sso.ClaimsFrom(r.Context())
		if !ok {
			http.Error(w, "not signed in", http.StatusUnauthorized) // only behind Optional or a Skipper
			return
		}
		fmt.Fprintf(w, "<p>Signed in as %s (session %s)</p>%s", claims.Username, claims.SessionID,
			sso.RefreshScriptTag(sso.RefreshScriptPath, claims, time.Now()))
	}
	_ = http.HandlerFunc(page)
}

// The same middleware in echo.
func ExampleClient_EchoMiddleware() {
	client, err := sso.New(context.Background(), sso.Options{Issuer: "http://domain.localhost:8080"})
	if err != nil {
		log.Fatal(err)
	}
	mw, err := client.EchoMiddleware(sso.MiddlewareConfig{})
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.Use(mw)
	e.GET("/", func(c echo.Context) error {
		claims, _ := sso.ClaimsFrom(c.Request().Context())
		return c.String(http.StatusOK, "Hello, "+claims.Username)
	})
}

// Verify a bearer token against fixed keys, without discovery.
func ExampleVerifier_Verify() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys, err := sso.NewStaticKeySet(jose.JSONWebKey{Key: pub, KeyID: "k1", Algorithm: wire.AlgEdDSA, Use: "sig"})
	if err != nil {
		log.Fatal(err)
	}
	v, err := sso.NewVerifier(keys, sso.Config{Issuer: "https://domain.com", Audience: "domain.com"})
	if err != nil {
		log.Fatal(err)
	}

	// What the issuer does, for the example's sake.
	now := time.Now().Unix()
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType(wire.TokenType))
	payload, _ := json.Marshal(sso.Claims{Issuer: "https://domain.com", Audience: "domain.com", Subject: "u_1",
		SessionID: "s_1", ID: "j_1", Username: "alice", IssuedAt: now, NotBefore: now, Expiry: now + 300})
	obj, _ := signer.Sign(payload)
	token, _ := obj.CompactSerialize()

	claims, err := v.Verify(context.Background(), token)
	if err != nil {
		fmt.Println("refused:", sso.Reason(err))
		return
	}
	fmt.Println(claims.Username)

	_, err = v.Verify(context.Background(), token[:len(token)-4]+"AAAA")
	fmt.Println(sso.Reason(err))
	// Output:
	// alice
	// signature
}
