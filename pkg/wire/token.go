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
