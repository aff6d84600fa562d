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

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// A service that only takes bearer tokens (an API) needs the Client and
// nothing of the HTTP layer: no middleware, no echo.
func ExampleNew() {
	ctx := context.Background()
	client, err := sso.New(ctx, sso.Options{Issuer: "http://domain.localhost:8080"})
	if err != nil {
		log.Fatal(err) // only bad options fail; an unreachable issuer is retried
	}
	defer client.Close()

	http.HandleFunc("/api/me", func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := client.Verify(r.Context(), token)
		if !ok || err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="canopy", error="invalid_token"`)
			http.Error(w, sso.Reason(err), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s\n", claims.Username)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", nil))
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
