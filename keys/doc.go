// Package keys manages the issuer's signing keys: generation, the key directory, the next/active/retired lifecycle and the public JWKS.
//
// # Key directory
//
// Every key is one private JWK in its own file, <kid>.json, mode 0600, in a
// directory of mode 0700. Besides the JWK members the file records the key's
// lifecycle in "canopy_state" and the unix times "canopy_created",
// "canopy_published", "canopy_activated" and "canopy_retired". Files are
// written atomically (temp file, fsync, rename, fsync of the directory), so a
// crash never leaves half a key behind. A hidden file named .lock serialises
// changes between processes with flock(2): every change takes it exclusively,
// re-reads the directory, then writes; every read takes it shared, so a reader
// never sees a rotation half done (no active key, or two).
//
// # Lifecycle
//
// A key is published as next (in the JWKS, not signing), becomes active
// (signing), is retired (still published) and is deleted once every token it
// can have signed has expired: retirement + AccessTTL + RetireMargin. The
// margin covers instances that keep signing with the old key until their next
// Reload and clock skew between hosts.
//
// Decisions where the contract is silent:
//   - Ensure on a directory with a next key but no active one (a crash inside
//     Revoke, or a file deleted by hand) promotes next only when it has been
//     published for JWKSMaxAge, the same rule Rotate applies, because then
//     every relying service has seen it. Otherwise it returns ErrNoActiveKey
//     saying when that will be and that a forced rotation fixes it now.
//   - Rotate with no next key creates one; without force it then reports a
//     TooEarlyError, since the new key has not been published yet.
//   - Revoke of the active key deletes it before anything else, so a crash
//     can never leave a stolen key published, and makes a fresh key active at
//     once rather than promoting next: whoever stole the active key from this
//     directory probably has next too. Relying services learn the fresh key
//     through their unknown-kid refetch.
//   - Two active keys (a crash inside Rotate, or a hand-made directory) are
//     repaired under the lock: the most recently activated stays active, the
//     others are retired. Until then the most recently activated signs.
//   - Times are stored as whole seconds rounded up, so every check derived
//     from them (rotation allowed, deletion) errs on the late, safe side.
//   - A directory writable by group or others is refused like a loose key
//     file (as ssh does for ~/.ssh): anyone who can write there can plant a
//     key that the issuer would sign with.
package keys
