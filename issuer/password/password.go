// Package password hashes and checks passwords with argon2id, bounding how many
// hashes run at once so that a burst of logins cannot exhaust memory.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen int
	KeyLen  uint32
}

// OWASP is the OWASP Password Storage Cheat Sheet's first argon2id
// configuration: m=19 MiB, t=2, p=1.
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Length limits, in characters. The maximum bounds the work an attacker can
// make one request cost; NIST SP 800-63B asks to allow at least 64.
const (
	MinLength = 8
	MaxLength = 128
)

// Errors callers branch on.
var (
	// ErrBusy: too many hashes are waiting; answer 503 with Retry-After.
	ErrBusy = errors.New("password: too many sign-ins at once")
	// ErrMismatch: the password does not match.
	ErrMismatch = errors.New("password: mismatch")
)

// CheckPolicy returns a message fit for the user when pw is not acceptable.
func CheckPolicy(pw string) string {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return "Password must be valid text."
	case n < MinLength:
		return fmt.Sprintf("Password must be at least %d characters.", MinLength)
	case n > MaxLength:
		return fmt.Sprintf("Password must be at most %d characters.", MaxLength)
	}
	return ""
}

// Hasher hashes and verifies passwords, at most a fixed number at a time.
type Hasher struct {
	params Params
	slots  chan struct{}
	dummy  string
}

// NewHasher returns a Hasher running at most concurrency hashes at once
// (each holds Params.Memory KiB while it runs).
func NewHasher(p Params, concurrency int) (*Hasher, error) {
	if concurrency < 1 {
		concurrency = 1
	}
	if p.Memory < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 || p.SaltLen < 8 || p.KeyLen < 16 {
		return nil, fmt.Errorf("password: unusable argon2id parameters %+v", p)
	}
	h := &Hasher{params: p, slots: make(chan struct{}, concurrency)}
	// A valid hash of a random password, so that an unknown user costs the same as a wrong password.
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	dummy, err := h.hash(string(pw[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ErrBusy
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC-format argon2id hash of pw. It waits for a slot until ctx ends.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(pw)
}

func (h *Hasher) hash(pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := h.params
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks pw against encoded. An empty encoded (unknown, disabled or
// deleted user) is checked against a dummy hash so that it takes the same time,
// and always fails with ErrMismatch.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer h.release()
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 || !known {
		return ErrMismatch
	}
	return nil
}

func decode(encoded string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("password: not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errors.New("password: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("password: bad parameters: %w", err)
	}
	if p.Memory > 1<<21 || p.Time > 16 || p.Threads < 1 || p.Time < 1 {
		return p, nil, nil, errors.New("password: parameters out of range")
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("password: bad salt: %w", err)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return p, nil, nil, errors.New("password: bad key")
	}
	return p, salt, key, nil
}
