// Package peers verifies one Canopy access token with Canopy's verifier and
// with the Go libraries a relying service might use instead (go-oidc, jwx,
// golang-jwt with keyfunc), each fetching the same JWKS over HTTP, so their
// costs can be set side by side and against the bare Ed25519 check. It has
// only benchmarks; `make bench-peers` prints their table.
package peers
