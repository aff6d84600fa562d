package sso

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// KeySet finds the public key a token names. The header's kid selects a key;
// the key's own alg, never the header, decides the algorithm.
//
// A KeySet whose keys can disappear should also have a method
// Generation() uint64 whose value changes whenever its keys do; the
// Verifier's token cache re-verifies tokens cached under another generation,
// so a removed key takes its cached tokens with it. StaticKeySet and
// RemoteKeySet have it.
type KeySet interface {
	// Key returns the public key with this kid. It returns an error wrapping
	// ErrUnknownKey when there is no such key and ErrNoKeys when no keys are
	// loaded at all. Callers must not modify the key.
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// generationKeySet is the optional KeySet method described on KeySet.
type generationKeySet interface {
	Generation() uint64
}

// StaticKeySet is a fixed KeySet, for tests, examples and programs that load
// keys themselves.
type StaticKeySet struct {
	keys map[string]*jose.JSONWebKey
}

// NewStaticKeySet returns a key set of the given public keys. Every key must
// pass the checks a fetched key passes (see RemoteKeySet); the error lists
// every key that does not.
func NewStaticKeySet(keys ...jose.JSONWebKey) (*StaticKeySet, error) {
	m, skipped := buildKeyMap(keys)
	if err := errors.Join(skipped...); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New("sso: static key set: no keys")
	}
	return &StaticKeySet{keys: m}, nil
}

// Key implements KeySet.
func (s *StaticKeySet) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return nil, errorf(ErrUnknownKey, "kid %q", kid)
}

// Generation is always 0: a static set never changes.
func (s *StaticKeySet) Generation() uint64 { return 0 }

// checkKey reports why a key cannot verify Canopy tokens, or nil. It is the
// one gate for static and fetched keys alike.
func checkKey(k *jose.JSONWebKey) error {
	switch {
	case k.KeyID == "":
		return errors.New("no kid")
	case k.Use != "sig":
		return fmt.Errorf("kid %q: use is %q, not \"sig\"", k.KeyID, k.Use)
	case !k.IsPublic():
		// A published private key is a leak; using it would hide the leak.
		return fmt.Errorf("kid %q: has a private part", k.KeyID)
	case !k.Valid():
		return fmt.Errorf("kid %q: invalid key", k.KeyID)
	}
	switch k.Algorithm {
	case wire.AlgEdDSA:
		if pub, ok := k.Key.(ed25519.PublicKey); !ok || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("kid %q: alg EdDSA needs an Ed25519 key, got %T", k.KeyID, k.Key)
		}
	case wire.AlgES256:
		if pub, ok := k.Key.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			return fmt.Errorf("kid %q: alg ES256 needs a P-256 key", k.KeyID)
		}
	default:
		return fmt.Errorf("kid %q: alg %q is not EdDSA or ES256", k.KeyID, k.Algorithm)
	}
	return nil
}

// foreignAlgorithms are the public-key signature algorithms other than the
// access token's. An issuer that is also an OpenID Provider publishes keys
// of them (RS256 for ID tokens) beside its access token keys; a relying
// service ignores them without a word, as they sign nothing it accepts.
// Symmetric and unknown algorithms are not on the list: a published HMAC
// key or a key without alg is a mistake worth a log line.
var foreignAlgorithms = map[string]bool{
	string(jose.RS256): true, string(jose.RS384): true, string(jose.RS512): true,
	string(jose.PS256): true, string(jose.PS384): true, string(jose.PS512): true,
	string(jose.ES384): true, string(jose.ES512): true,
}

func foreignAlgorithm(alg string) bool { return foreignAlgorithms[alg] }

// buildKeyMap keeps the usable keys by kid, quietly leaving out keys of
// foreign algorithms. Two keys with one kid are both
// dropped: a kid that names two keys names neither.
func buildKeyMap(keys []jose.JSONWebKey) (map[string]*jose.JSONWebKey, []error) {
	m := make(map[string]*jose.JSONWebKey, len(keys))
	var skipped []error
	dup := map[string]bool{}
	for i := range keys {
		k := keys[i]
		if foreignAlgorithm(k.Algorithm) {
			continue // the issuer's ID token keys: not ours to use, nothing to report
		}
		if err := checkKey(&k); err != nil {
			skipped = append(skipped, err)
			continue
		}
		if _, seen := m[k.KeyID]; seen || dup[k.KeyID] {
			dup[k.KeyID] = true
			delete(m, k.KeyID)
			skipped = append(skipped, fmt.Errorf("kid %q: appears twice", k.KeyID))
			continue
		}
		m[k.KeyID] = &k
	}
	return m, skipped
}

// parseKeySet reads a JWKS document, skipping (and reporting) keys that fail
// checkKey or do not parse. A document that is not a JWKS is an error.
func parseKeySet(data []byte) (map[string]*jose.JSONWebKey, []error, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWKS: %w", err)
	}
	keys := make([]jose.JSONWebKey, 0, len(doc.Keys))
	var skipped []error
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Errorf("unparsable key: %w", err))
			continue
		}
		keys = append(keys, k)
	}
	m, more := buildKeyMap(keys)
	return m, append(skipped, more...), nil
}

// sameKeys reports whether two key maps hold the same kids with the same
// algorithms and public keys, so an unchanged refetch keeps the generation.
func sameKeys(a, b map[string]*jose.JSONWebKey) bool {
	if len(a) != len(b) {
		return false
	}
	type equaler interface{ Equal(x crypto.PublicKey) bool }
	for kid, ka := range a {
		kb, ok := b[kid]
		if !ok || ka.Algorithm != kb.Algorithm {
			return false
		}
		ea, ok := ka.Key.(equaler)
		if !ok || !ea.Equal(kb.Key) {
			return false
		}
	}
	return true
}
