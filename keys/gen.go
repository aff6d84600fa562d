package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Lifecycle states, spelled as in a key file's "canopy_state".
const (
	StateNext    = "next"
	StateActive  = "active"
	StateRetired = "retired"
)

// RSABits is the size of new RSA keys (RS256, for ID tokens): 2048 bits,
// NIST's minimum through 2030 and what every OIDC client accepts. Key
// files with smaller RSA keys are refused.
const RSABits = 2048

// kidBytes of randomness make a kid nobody can predict or collide with on
// purpose; it never derives from anything an attacker controls.
const kidBytes = 16

// key is one parsed key file. Values are never modified once built: a change
// of state writes a new file and yields a new *key, so snapshots can share
// them without locks.
type key struct {
	kid  string
	alg  string
	priv any // ed25519.PrivateKey, *ecdsa.PrivateKey (P-256) or *rsa.PrivateKey
	pub  any // ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
	meta meta
	raw  []byte // file contents, to skip re-parsing an unchanged file
}

// meta is a key's lifecycle; zero times are absent.
type meta struct {
	State     string
	Created   time.Time
	Published time.Time
	Activated time.Time
	Retired   time.Time
	// DeleteAfter is a retired key's own deadline, fixed when it was
	// retired; zero in files written before keys carried one.
	DeleteAfter time.Time
}

// with returns a copy of k with another lifecycle, for writing back.
func (k *key) with(m meta) *key {
	c := *k
	c.meta = m
	c.raw = nil
	return &c
}

// newKID returns a random URL-safe key id that does not begin with '-', so
// that `issuer keys revoke KID` never reads it as a flag.
func newKID() (string, error) {
	b := make([]byte, kidBytes)
	for {
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("keys: random kid: %w", err)
		}
		if kid := base64.RawURLEncoding.EncodeToString(b); kid[0] != '-' {
			return kid, nil
		}
	}
}

// generate makes a fresh key pair for alg with a random kid.
func generate(alg string, m meta) (*key, error) {
	kid, err := newKID()
	if err != nil {
		return nil, err
	}
	k := &key{kid: kid, alg: alg, meta: m}
	switch alg {
	case wire.AlgEdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keys: generate Ed25519 key: %w", err)
		}
		k.priv, k.pub = priv, pub
	case wire.AlgES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keys: generate P-256 key: %w", err)
		}
		k.priv, k.pub = priv, &priv.PublicKey
	case wire.AlgRS256:
		priv, err := rsa.GenerateKey(rand.Reader, RSABits)
		if err != nil {
			return nil, fmt.Errorf("keys: generate RSA key: %w", err)
		}
		k.priv, k.pub = priv, &priv.PublicKey
	default:
		return nil, fmt.Errorf("keys: unsupported algorithm %q (want %s, %s or %s)", alg, wire.AlgEdDSA, wire.AlgES256, wire.AlgRS256)
	}
	return k, nil
}

// unixCeil rounds t up to whole seconds, the file's resolution, so that every
// deadline derived from a stored time is late rather than early.
func unixCeil(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// fromUnix is the inverse of unixCeil for stored values; 0 is absent.
func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
