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
//
// Only the active key of Options.Alg signs access tokens, whatever other
// algorithms the directory keeps.
func (d *Dir) Sign(payload []byte) (string, error) {
	s := d.snap.Load()
	if s.signer == nil {
		return "", ErrNoActiveKey
	}
	return sign(s.signer, s.active[d.opts.Alg], payload)
}

// SignAs signs payload with the active key of alg and the header "typ" typ,
// for tokens that are not access tokens (ID tokens: wire.IDTokenType). An
// alg the directory keeps no active key of is ErrNoActiveKey. It refuses
// wire.TokenType, which only Sign may produce.
func (d *Dir) SignAs(alg, typ string, payload []byte) (string, error) {
	if typ == wire.TokenType {
		return "", fmt.Errorf("keys: SignAs refuses typ %q: access tokens come from Sign", typ)
	}
	k := d.snap.Load().active[alg]
	if k == nil {
		return "", fmt.Errorf("%w for %s", ErrNoActiveKey, alg)
	}
	signer, err := newSigner(k, typ)
	if err != nil {
		return "", err
	}
	return sign(signer, k, payload)
}

func sign(signer jose.Signer, k *key, payload []byte) (string, error) {
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign with %s: %w", k.kid, err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("keys: serialize JWS: %w", err)
	}
	return token, nil
}

// newSigner builds the go-jose signer for k with header typ. Passing a JSONWebKey with a
// KeyID is what puts "kid" in the header; go-jose sorts the members, which
// gives alg, kid, typ.
func newSigner(k *key, typ string) (jose.Signer, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{
			Algorithm: jose.SignatureAlgorithm(k.alg),
			Key:       jose.JSONWebKey{Key: k.priv, KeyID: k.kid},
		},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s: %w", k.kid, err)
	}
	return signer, nil
}
