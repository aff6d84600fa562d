package keys

import (
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Sign signs payload with the active key and returns the JWS compact
// serialization. Its protected header is exactly
// {"alg":…,"kid":…,"typ":"at+jwt"}: the key is never embedded. It takes no
// lock and reads no file.
func (d *Dir) Sign(payload []byte) (string, error) {
	s := d.snap.Load()
	if s.signer == nil {
		return "", ErrNoActiveKey
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign with %s: %w", s.active.kid, err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("keys: serialize JWS: %w", err)
	}
	return token, nil
}

// newSigner builds the go-jose signer for k. Passing a JSONWebKey with a
// KeyID is what puts "kid" in the header; go-jose sorts the members, which
// gives alg, kid, typ.
func newSigner(k *key) (jose.Signer, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{
			Algorithm: jose.SignatureAlgorithm(k.alg),
			Key:       jose.JSONWebKey{Key: k.priv, KeyID: k.kid},
		},
		(&jose.SignerOptions{}).WithType(wire.TokenType),
	)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s: %w", k.kid, err)
	}
	return signer, nil
}
