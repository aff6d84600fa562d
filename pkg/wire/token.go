package wire

// TokenType is the access token's "typ" header (RFC 9068).
const TokenType = "at+jwt"

// The signing algorithms an access token may use; the key set says which
// key uses which.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// Algorithms lists the signing algorithms, in the order discovery publishes
// them. It returns a new slice each time.
func Algorithms() []string { return []string{AlgEdDSA, AlgES256} }

// ValidAlgorithm reports whether alg is one of Algorithms.
func ValidAlgorithm(alg string) bool { return alg == AlgEdDSA || alg == AlgES256 }

// AlgRS256 is the algorithm ID tokens are signed with unless a client asks
// for another: OIDC Core §15.1 makes it the one every client supports. An
// access token (TokenType) is never signed with it.
const AlgRS256 = "RS256"

// IDTokenType is the "typ" header of an ID token, which is not an access
// token: a relying service that checks typ (pkg/sso does) refuses it.
const IDTokenType = "JWT"

// IDTokenAlgorithms lists the algorithms the issuer signs ID tokens with,
// in the order discovery publishes them, the default first. It returns a
// new slice each time.
func IDTokenAlgorithms() []string { return []string{AlgRS256, AlgES256, AlgEdDSA} }

// ValidIDTokenAlgorithm reports whether alg is one of IDTokenAlgorithms.
func ValidIDTokenAlgorithm(alg string) bool { return alg == AlgRS256 || ValidAlgorithm(alg) }
