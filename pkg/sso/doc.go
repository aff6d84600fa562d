// Package sso verifies Canopy access tokens locally against the issuer's
// published keys. It is the verifier core: a service that only takes bearer
// tokens needs nothing else, and imports neither net/http middleware nor
// echo. The HTTP layer (middleware, pages, rules, the refresh script) is
// package ssohttp; the echo adapter is package ssoecho.
//
// A relying service needs one Client, made from the issuer URL; everything
// else (the key set, the revocation feed, the cookie name and domain, the
// refresh and login URLs) comes from the issuer's discovery document:
//
//	client, err := sso.New(ctx, sso.Options{Issuer: "https://domain.com"})
//	if err != nil { … } // only bad options fail: an unreachable issuer is retried
//	defer client.Close()
//	claims, err := client.Verify(ctx, bearerToken) // sso.Reason(err) is the public reason
//
// For browsers, ssohttp.Middleware(client, cfg) protects a handler with the
// same Client.
//
// # From cookie to claims
//
// A request's token reaches its claims along one path; the files, in order:
//
//  1. ssohttp.Authenticate (pkg/ssohttp/request.go) picks the token: the
//     "Authorization: Bearer" one alone, else the access cookies, and asks
//     the Verifier about each.
//  2. Verifier.Verify (verify.go) caps the size, asks the verified-token
//     cache, and on a miss runs verifyCold.
//  3. splitToken and parseHeader (token.go): exactly three canonical
//     base64url segments; a strict header (no duplicate keys, no crit, typ
//     at+jwt, alg from the allowed list).
//  4. The KeySet (keyset.go; RemoteKeySet in jwks.go, fetched with fetch.go)
//     gives the key for kid, and its algorithm must equal alg; go-jose
//     checks the signature.
//  5. parseClaims (claims.go, on the strict JSON scanner of strictjson.go)
//     decodes the claims with one JSON type each, no duplicates.
//  6. checkClaims (verify.go) checks iss, aud, exp/nbf/iat with the leeway,
//     exp-iat, and the sid against the RevocationList (revocation.go).
//  7. The claims go into the token cache (cache.go); a hit later rechecks
//     the clock, revocation and that the key set is unchanged.
//
// Discovery (discovery.go) and Client (client.go) wire the key set, the
// revocation feed and the Verifier; errors.go holds the sentinels and
// Reason, observe.go the metrics hooks, probe.go the issuer health probe.
//
// # Decisions SPEC.md leaves open
//
//   - A zero Leeway means the 30 s default; NoLeeway (any negative value)
//     means none, so a relying --leeway 0 must pass NoLeeway.
//   - The key set's MinRefresh (10 s) is both the floor under Cache-Control
//     and the unknown-kid refetch rate limit; failed fetches are retried
//     from MinRefresh, doubling to 30 s.
//   - Verified tokens are cached until exp plus the leeway. Claims returned
//     are shared: treat them as read-only.
package sso
