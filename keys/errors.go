package keys

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by Revoke for a kid that is not in the directory.
var ErrNotFound = errors.New("keys: no such key")

// ErrNoActiveKey means the set has no key to sign with: the directory has not
// been initialised by Ensure, or it was left without an active key.
var ErrNoActiveKey = errors.New("keys: no active signing key")

// TooEarlyError is returned by Rotate when the next key has been published for
// less than JWKSMaxAge: relying services may still hold a cached key set
// without it, and would reject every token it signs.
type TooEarlyError struct {
	// Allowed is the first moment a rotation without force succeeds.
	Allowed time.Time
	// MaxAge is the JWKS max-age the wait comes from: the largest that
	// serving instances have recorded, or the Dir's own when larger.
	MaxAge time.Duration
}

// Error says when the rotation will be allowed, and why then.
func (e *TooEarlyError) Error() string {
	return fmt.Sprintf("keys: too early to rotate: the next key must be published for the longest JWKS max-age in use (%s) before it signs; rotation is allowed from %s",
		e.MaxAge, e.Allowed.UTC().Format(time.RFC3339))
}

// FileError reports a key file (or the key directory) that cannot be used:
// unreadable, accessible to group or others, or malformed. The issuer refuses
// to start on one, so the message names the file.
type FileError struct {
	Path string
	Err  error
}

// Error names the file and the problem.
func (e *FileError) Error() string {
	return "keys: " + e.Path + ": " + e.Err.Error()
}

// Unwrap gives the cause, such as fs.ErrPermission for an unreadable file.
func (e *FileError) Unwrap() error { return e.Err }
