// Package sso verifies Canopy access tokens locally against the issuer's
// published keys and protects net/http and echo handlers with them.
//
// A relying service needs one Client, made from the issuer URL; everything
// else (the key set, the revocation feed, the cookie name and domain, the
// refresh and login URLs) comes from the issuer's discovery document:
//
//	client, err := sso.New(ctx, sso.Options{Issuer: "https://domain.com"})
//	if err != nil { … } // only bad options fail: an unreachable issuer is retried
//	defer client.Close()
//	protect, err := client.Middleware(sso.MiddlewareConfig{
//		Authorize: func(r *http.Request, c *sso.Claims) error { … }, // optional: 403
//	})
//	mux.Handle("/", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		claims, _ := sso.ClaimsFrom(r.Context())
//		fmt.Fprintf(w, "hello %s", claims.Username)
//	})))
//	mux.Handle(sso.RefreshScriptPath, client.RefreshScriptHandler())
//
// For echo, client.EchoMiddleware(cfg) (or EchoMiddleware(mw) around any
// middleware from this package) runs the same code.
//
// # What the middleware does
//
// The token comes from "Authorization: Bearer", else from the access cookie
// (its exact name). A valid token puts its *Claims in the request context
// (ClaimsFrom). Otherwise a browser navigation (Sec-Fetch-Mode: navigate, or
// no Sec-Fetch-Mode and a GET/HEAD accepting text/html) gets 303 to
// {refresh_uri}?return_to=<this URL>, and any other request 401 with
// WWW-Authenticate: Bearer realm="canopy" and SPEC.md's JSON body, whose
// reason is Reason(err). No key set yet: 503. Every response the middleware
// writes itself carries Cache-Control: no-store.
//
// Decisions SPEC.md leaves open:
//   - Two access cookies with different valid sessions are ErrAmbiguous,
//     public reason "malformed" (SPEC.md's list has no better word). Any
//     request with two or more access cookies gets Set-Cookie headers
//     expiring the name on every prefix of its path, with the cookie domain
//     and host-only.
//   - A redirect loop (two rounds to /refresh within 60 s, counted in a
//     host-only "canopy-loop" cookie, still refused) ends in a 500 page that
//     names the cause: every cause is a deployment fault the user cannot fix.
//   - An expired session while the issuer's /healthz fails (probed with a
//     2 s timeout, cached 5 s) gets a 503 "sign-in service unavailable" page
//     instead of a redirect into the dead issuer.
//   - Authorize errors give 403; a *ForbiddenError's Message is shown on the
//     page, any other error a generic text. A *StepUpError (RequireAMR,
//     MaxAuthAge) sends a browser to {login_uri}?prompt=login&return_to=…,
//     noting the time in a host-only "canopy-step-up" cookie; a sign-in made
//     after that which still falls short gets a 403 page naming what is
//     needed, not another round. An API request gets 401 with RFC 9470's
//     error="insufficient_user_authentication" and a JSON body with
//     login_url, max_age and required_amr. AllOf lets a plain refusal win
//     over a step-up, and merges step-ups.
//   - A zero Leeway means the 30 s default; NoLeeway (any negative value)
//     means none, so a relying --leeway 0 must pass NoLeeway.
//   - Optional lets every request without a valid token through as anonymous
//     and never redirects, even when no key set is loaded.
//   - The key set's MinRefresh (10 s) is both the floor under Cache-Control
//     and the unknown-kid refetch rate limit; failed fetches are retried
//     from MinRefresh, doubling to 30 s.
//
// # Verifying tokens directly
//
// NewVerifier with a KeySet (RemoteKeySet for a live issuer, StaticKeySet for
// fixed keys) verifies a token string: size cap, three canonical base64url
// segments, a strict header (no duplicate keys, no crit, typ at+jwt, alg from
// the allowed list and equal to the key's alg), the signature with go-jose,
// strictly typed claims, iss, aud, exp/nbf/iat with a leeway, exp-iat bound,
// revocation. Verified tokens are cached until exp plus the leeway; a cache
// hit still checks the clock, revocation and that the key set is unchanged.
// Claims returned are shared: treat them as read-only.
package sso
