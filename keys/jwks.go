package keys

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// JWKS returns the public key set, {"keys":[…]} with every published key in
// a stable order (active, next, retired, each by kid), and its strong ETag.
// Both are computed when the set changes, not per request; callers must not
// modify body.
func (d *Dir) JWKS() (body []byte, etag string) {
	s := d.snap.Load()
	return s.jwks, s.etag
}

// buildJWKS renders the public halves of keys. Only go-jose's public JWK is
// serialised, so no private member can slip into the body.
func buildJWKS(keys []*key) ([]byte, string, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		jwk := jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: k.alg, Use: "sig"}
		if !jwk.IsPublic() {
			return nil, "", fmt.Errorf("keys: key %s: refusing to publish a non-public key", k.kid)
		}
		set.Keys = append(set.Keys, jwk)
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, "", fmt.Errorf("keys: encode JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	return body, `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`, nil
}
