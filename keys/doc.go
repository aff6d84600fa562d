// Package keys manages the issuer's signing keys: generation, the key directory, the next/active/retired lifecycle and the public JWKS.
//
// # Key directory
//
// Every key is one private JWK in its own file, <kid>.json, mode 0600, in a
// directory of mode 0700. Besides the JWK members the file records the key's
// lifecycle in "canopy_state" and the unix times "canopy_created",
// "canopy_published", "canopy_activated", "canopy_retired" and, in a retired
// key, "canopy_delete_after", its own deadline. Files are
// written atomically (temp file, fsync, rename, fsync of the directory), so a
// crash never leaves half a key behind. A hidden file named .lock serialises
// changes between processes with flock(2): every change takes it exclusively,
// re-reads the directory, then writes; every read takes it shared, so a reader
// never sees a rotation half done (no active key, or two).
//
// A hidden file named .fleet.json (mode 0600, written atomically under the
// lock) records what the serving instances use:
//
//	{"canopy_fleet": 1, "largest_access_ttl_seconds": 3600, "largest_jwks_max_age_seconds": 300}
//
// Ensure, which only serving instances call, raises both values to the
// instance's AccessTTL and JWKSMaxAge (rounded up to whole seconds); nothing
// lowers them. A Dir that only manages keys, as `issuer keys` does, records
// nothing, because the command that rotates does not know the fleet's flags:
// its own AccessTTL and JWKSMaxAge can lengthen a wait, never shorten one. A
// damaged or foreign record is a *FileError like a bad key file; removing it
// is safe, as every serving instance writes its values back at its next
// Reload.
//
// # Lifecycle
//
// Every algorithm the Dir keeps (Options.Algs) has its own lifecycle: one
// active key, one next, its retired ones. Only the active key of
// Options.Alg signs access tokens (Sign); SignAs signs other tokens, such
// as ID tokens, with the active key of the algorithm asked for. Rotate
// moves every algorithm at once, and refuses for all while any next key is
// too young.
//
// A key is published as next (in the JWKS, not signing), becomes active
// (signing) once it has been published for the largest recorded JWKS max-age
// (or the Dir's own, when larger), is retired (still published) and is
// deleted once every token it can have signed has expired. That deadline is
// fixed when the key is retired, as retirement + the largest recorded access
// TTL (or the Dir's own, when larger) + RetireMargin, and written into the
// file, so that no later command with other flags can move it. The margin
// covers instances that keep signing with the old key until their next Reload
// and clock skew between hosts.
//
// A retired key file from before files carried a deadline may have signed
// tokens of any lifetime the issuer allows, so it is kept for retirement +
// MaxAccessTTL (or the largest recorded access TTL, when larger) +
// RetireMargin; the first locked pass (Reload, or any change) writes that
// deadline into the file.
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
//   - Recorded values only grow, so lowering --access-ttl or --jwks-max-age
//     keeps the old, longer waits: the safe side. To take a lower value,
//     restart every serving instance with it, wait the old value out, then
//     remove .fleet.json; the instances record the lower value again.
//   - A serving Dir writes the record only when it is missing or smaller
//     than the Dir's values, so a steady fleet never rewrites it.
//   - A directory writable by group or others is refused like a loose key
//     file (as ssh does for ~/.ssh): anyone who can write there can plant a
//     key that the issuer would sign with.
package keys
