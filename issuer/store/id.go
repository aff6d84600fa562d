package store

import (
	"crypto/rand"
	"encoding/base64"
)

// NewID returns a random opaque identifier of 128 bits (user ids, session ids, jti).
func NewID() string { return RandomToken(16) }

// RandomToken returns n random bytes, base64url without padding.
func RandomToken(n int) string {
	b := make([]byte, n)
	// Since Go 1.24 crypto/rand.Read never returns an error: it crashes the program instead.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
