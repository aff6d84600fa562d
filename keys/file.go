package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

const (
	fileExt    = ".json"
	tempPrefix = ".tmp-" // hidden, and without fileExt, so readers skip it
	lockName   = ".lock"
	// maxFileSize bounds what is read from the directory; a key file is
	// well under 1 KiB.
	maxFileSize = 64 << 10
)

// fileMeta holds the lifecycle members a key file carries beside its JWK.
type fileMeta struct {
	State     string `json:"canopy_state"`
	Created   int64  `json:"canopy_created"`
	Published int64  `json:"canopy_published,omitempty"`
	Activated int64  `json:"canopy_activated,omitempty"`
	Retired   int64  `json:"canopy_retired,omitempty"`
	// DeleteAfter is written when a key is retired, from the longest token
	// lifetime recorded then, so that no later command with other flags
	// can move it.
	DeleteAfter int64 `json:"canopy_delete_after,omitempty"`
}

// encodeKey renders k as its file: go-jose's private JWK plus the lifecycle
// members. The JWK is never built by hand.
func encodeKey(k *key) ([]byte, error) {
	jwkJSON, err := jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: k.alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.kid, err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(jwkJSON, &members); err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.kid, err)
	}
	metaJSON, err := json.Marshal(fileMeta{
		State:       k.meta.State,
		Created:     unixOrZero(k.meta.Created),
		Published:   unixOrZero(k.meta.Published),
		Activated:   unixOrZero(k.meta.Activated),
		Retired:     unixOrZero(k.meta.Retired),
		DeleteAfter: unixOrZero(k.meta.DeleteAfter),
	})
	if err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.kid, err)
	}
	if err := json.Unmarshal(metaJSON, &members); err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.kid, err)
	}
	out, err := json.MarshalIndent(members, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.kid, err)
	}
	return append(out, '\n'), nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// decodeKey parses a key file named name. The JWK and the lifecycle are
// parsed separately so go-jose alone interprets the key material.
func decodeKey(name string, data []byte) (*key, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("not a valid JWK: %w", err)
	}
	var fm fileMeta
	if err := json.Unmarshal(data, &fm); err != nil {
		return nil, fmt.Errorf("bad lifecycle members: %w", err)
	}
	kid := strings.TrimSuffix(name, fileExt)
	if !validKID(kid) {
		return nil, errors.New("the file name is not a kid: 1-128 characters of A-Z, a-z, 0-9, - and _")
	}
	if jwk.KeyID != kid {
		return nil, fmt.Errorf("kid %q does not match the file name", jwk.KeyID)
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, fmt.Errorf("use %q, want sig", jwk.Use)
	}
	k := &key{kid: kid, alg: jwk.Algorithm, raw: data}
	switch jwk.Algorithm {
	case wire.AlgEdDSA:
		priv, ok := jwk.Key.(ed25519.PrivateKey)
		if !ok || !jwk.Valid() {
			return nil, fmt.Errorf("alg %s needs an Ed25519 private key, the file holds %T", jwk.Algorithm, jwk.Key)
		}
		k.priv, k.pub = priv, priv.Public()
	case wire.AlgES256:
		priv, ok := jwk.Key.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() || !jwk.Valid() {
			return nil, fmt.Errorf("alg %s needs a P-256 private key, the file holds %T", jwk.Algorithm, jwk.Key)
		}
		if err := checkECPair(priv); err != nil {
			return nil, err
		}
		k.priv, k.pub = priv, &priv.PublicKey
	case wire.AlgRS256:
		priv, ok := jwk.Key.(*rsa.PrivateKey)
		if !ok || !jwk.Valid() {
			return nil, fmt.Errorf("alg %s needs an RSA private key, the file holds %T", jwk.Algorithm, jwk.Key)
		}
		if priv.N.BitLen() < RSABits {
			return nil, fmt.Errorf("alg %s: RSA key of %d bits, want at least %d", jwk.Algorithm, priv.N.BitLen(), RSABits)
		}
		// Validate checks that the primes make the modulus and the exponents
		// agree, as checkECPair does for EC keys.
		if err := priv.Validate(); err != nil {
			return nil, fmt.Errorf("bad RSA private key: %w", err)
		}
		k.priv, k.pub = priv, &priv.PublicKey
	default:
		return nil, fmt.Errorf("unsupported alg %q (want %s, %s or %s)", jwk.Algorithm, wire.AlgEdDSA, wire.AlgES256, wire.AlgRS256)
	}
	m, err := checkMeta(fm)
	if err != nil {
		return nil, err
	}
	k.meta = m
	return k, nil
}

// validKID accepts the base64url alphabet that newKID produces, so that a
// hand-made file cannot put odd characters into token headers and logs.
func validKID(kid string) bool {
	if kid == "" || len(kid) > 128 {
		return false
	}
	for _, c := range kid {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkECPair makes sure x and y belong to d: go-jose checks that the point
// is on the curve but not that it is d's, and a mismatch would publish a key
// that verifies none of the tokens signed with d.
func checkECPair(priv *ecdsa.PrivateKey) error {
	d, err := priv.Bytes()
	if err != nil {
		return fmt.Errorf("bad EC private key: %w", err)
	}
	derived, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return fmt.Errorf("bad EC private key: %w", err)
	}
	if !derived.PublicKey.Equal(&priv.PublicKey) {
		return errors.New("EC public point does not match d")
	}
	return nil
}

// checkMeta validates the lifecycle members: each state needs the times that
// the lifecycle rules are computed from.
func checkMeta(fm fileMeta) (meta, error) {
	m := meta{
		State:       fm.State,
		Created:     fromUnix(fm.Created),
		Published:   fromUnix(fm.Published),
		Activated:   fromUnix(fm.Activated),
		Retired:     fromUnix(fm.Retired),
		DeleteAfter: fromUnix(fm.DeleteAfter),
	}
	if fm.DeleteAfter != 0 {
		if fm.State != StateRetired {
			return meta{}, fmt.Errorf("%s key with canopy_delete_after: only a retired key has a deadline", fm.State)
		}
		if fm.DeleteAfter < fm.Retired {
			return meta{}, fmt.Errorf("canopy_delete_after %d before canopy_retired %d", fm.DeleteAfter, fm.Retired)
		}
	}
	var missing []string
	if fm.Created <= 0 {
		missing = append(missing, "canopy_created")
	}
	switch fm.State {
	case StateNext:
		if fm.Published <= 0 {
			missing = append(missing, "canopy_published")
		}
	case StateActive:
		if fm.Activated <= 0 {
			missing = append(missing, "canopy_activated")
		}
	case StateRetired:
		if fm.Retired <= 0 {
			missing = append(missing, "canopy_retired")
		}
	default:
		return meta{}, fmt.Errorf("canopy_state %q, want %s, %s or %s", fm.State, StateNext, StateActive, StateRetired)
	}
	if len(missing) > 0 {
		return meta{}, fmt.Errorf("%s key without %s", fm.State, strings.Join(missing, ", "))
	}
	return m, nil
}

// readKeyFile reads a key file after checking that nobody but the owner can
// read or change it. Errors are *FileError naming the file.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("unreadable: %w", err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("unreadable: %w", err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &FileError{Path: path, Err: errors.New("not a regular file")}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &FileError{Path: path, Err: fmt.Errorf("mode %04o gives group or others access to a private key; chmod 600 it", perm)}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("unreadable: %w", err)}
	}
	if len(data) > maxFileSize {
		return nil, &FileError{Path: path, Err: fmt.Errorf("larger than %d bytes", maxFileSize)}
	}
	return data, nil
}

// writeAtomic replaces dir/name with data so that readers see either the old
// file or the new one, and a crash leaves at most a stale temp file.
func writeAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; Chmod states it whatever the umask did.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	return syncDir(dir)
}

// removeFile deletes dir/name durably: a revoked key must not come back
// after a crash.
func removeFile(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keys: remove %s: %w", name, err)
	}
	return syncDir(dir)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	return nil
}
