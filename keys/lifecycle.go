package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Ensure prepares the directory for signing: it creates the directory (0700)
// and, on first start, an active key and a next key, all in one locked step,
// so instances starting together make one set. It is idempotent. It also
// removes expired retired keys. A directory with a next key but no active
// one gets next promoted once next has been published for the JWKS max-age;
// before that Ensure returns an error wrapping ErrNoActiveKey that says when.
//
// Ensure is for instances that sign and serve the JWKS: before anything else
// it records their AccessTTL and JWKSMaxAge in the directory, raising the
// recorded values, never lowering them, and from then on this Dir keeps the
// record up to date in every change and Reload. A Dir that only manages keys
// (`issuer keys`) must not call it: its flags say nothing about the tokens
// and cached key sets in circulation.
func (d *Dir) Ensure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.serving = true
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return fmt.Errorf("keys: create key directory: %w", err)
	}
	return d.change(func(t *txn) error {
		for _, alg := range d.opts.Algs {
			if err := t.ensureAlg(alg); err != nil {
				return err
			}
		}
		return nil
	})
}

// ensureAlg gives alg an active and a next key. An algorithm with no key at
// all (a new directory, or one from a version that kept fewer algorithms)
// gets both at once: relying services find a new kid through their
// unknown-kid refetch, and ignore algorithms they do not accept.
func (t *txn) ensureAlg(alg string) error {
	if len(t.inState(StateActive, alg)) == 0 {
		next := t.oldestNext(alg)
		if next == nil {
			if _, err := t.create(StateActive, alg); err != nil {
				return err
			}
		} else {
			allowed := t.d.promotable(next, t.fleet)
			if t.now.Before(allowed) {
				return fmt.Errorf("%w in %s: next %s key %s may be promoted from %s, or at once by a forced rotation",
					ErrNoActiveKey, t.d.path, alg, next.kid, allowed.UTC().Format(time.RFC3339))
			}
			if err := t.setState(next, StateActive); err != nil {
				return err
			}
		}
	}
	if len(t.inState(StateNext, alg)) == 0 {
		if _, err := t.create(StateNext, alg); err != nil {
			return err
		}
	}
	return nil
}

// Rotate promotes the next key to active, retires the active key and creates
// a new next key, in every algorithm the directory keeps (Options.Algs and
// any other that has an active key). Unless force is set it refuses with a
// *TooEarlyError, changing nothing, while a next key has been published for
// less than the JWKS max-age, since relying services may not know it yet.
// The max-age is the largest that serving instances have recorded, or
// JWKSMaxAge when larger: the flags of the command that rotates cannot
// shorten the wait. An algorithm with no next key gets one first. The
// retired key's deadline is fixed in its file, by the same rule from the
// recorded token lifetime.
func (d *Dir) Rotate(force bool) error {
	return d.RotateAlgs(nil, force)
}

// RotateAlgs is Rotate for the algorithms algs only (all when empty).
func (d *Dir) RotateAlgs(algs []string, force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.change(func(t *txn) error {
		if len(algs) == 0 {
			algs = t.managedAlgs()
		}
		nexts := make(map[string]*key, len(algs))
		for _, alg := range algs {
			if !wire.ValidIDTokenAlgorithm(alg) {
				return fmt.Errorf("keys: algorithm %q: want %s, %s or %s", alg, wire.AlgEdDSA, wire.AlgES256, wire.AlgRS256)
			}
			next := t.oldestNext(alg)
			if next == nil {
				var err error
				if next, err = t.create(StateNext, alg); err != nil {
					return err
				}
			}
			nexts[alg] = next
		}
		// Every algorithm is checked before any changes, so a refusal
		// leaves the lifecycles as they were (bar new next keys).
		for _, alg := range algs {
			if allowed := d.promotable(nexts[alg], t.fleet); !force && t.now.Before(allowed) {
				return &TooEarlyError{Allowed: allowed, MaxAge: d.maxAge(t.fleet)}
			}
		}
		for _, alg := range algs {
			// The order makes every crash point safe: the new next first,
			// then the promotion, then the retirement. Two active keys
			// after a crash are repaired by the next locked pass; the newer
			// one signs.
			if _, err := t.create(StateNext, alg); err != nil {
				return err
			}
			old := t.inState(StateActive, alg)
			if err := t.setState(nexts[alg], StateActive); err != nil {
				return err
			}
			for _, k := range old {
				if err := t.setState(k, StateRetired); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// managedAlgs are the algorithms Rotate rotates by default: those the Dir
// keeps and those that have an active key, in a stable order.
func (t *txn) managedAlgs() []string {
	algs := slices.Clone(t.d.opts.Algs)
	for _, a := range algsOf(t.inState(StateActive, "")) {
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return algs
}

// Revoke removes the key kid from the directory and the JWKS at once (a
// stolen key). When it was active a fresh key becomes active at once (relying
// services find it through their unknown-kid refetch); when it was next a
// fresh next takes its place; so the set is never empty. Other instances stop
// signing with a revoked key at their next Reload. An unknown kid is
// ErrNotFound.
func (d *Dir) Revoke(kid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.change(func(t *txn) error {
		k := t.find(kid)
		if k == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, kid)
		}
		// Deleted first, so that no later failure leaves it published.
		if err := t.remove(k); err != nil {
			return err
		}
		switch k.meta.State {
		case StateActive, StateNext:
			if _, err := t.create(k.meta.State, k.alg); err != nil {
				return err
			}
		}
		return nil
	})
}

// txn is one change to the directory, made under the exclusive lock on a
// fresh read of it.
type txn struct {
	d     *Dir
	now   time.Time // the clock, for decisions
	stamp time.Time // now rounded up to whole seconds, for the files
	keys  []*key
	fleet fleet // what serving instances have recorded
}

// change runs fn under the exclusive lock after recording this instance's
// values (when it serves) and cleaning up, then installs what is on disk,
// including the part of a change that failed half-way, so that this instance
// agrees with the others. fn may be nil. Callers hold d.mu.
func (d *Dir) change(fn func(*txn) error) error {
	unlock, err := lockDir(d.path, true)
	if err != nil {
		return err
	}
	defer unlock()
	res, err := d.scan()
	if err != nil {
		return err
	}
	now := d.opts.Now()
	t := &txn{d: d, now: now, stamp: fromUnix(unixCeil(now)), keys: res.keys, fleet: res.fleet}
	// Recorded first, so that this change already uses what this instance
	// is about to sign and serve with.
	if d.serving {
		err = t.record(res.fleetFound)
	}
	if err == nil {
		err = t.cleanup(res.stale)
	}
	if err == nil && fn != nil {
		err = fn(t)
	}
	res, rerr := d.scan()
	if rerr == nil {
		rerr = d.install(res.keys, res.fleet)
	}
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// record raises the recorded values to this instance's and writes them when
// that changed anything or when there is no record yet.
func (t *txn) record(found bool) error {
	f, grew := t.fleet.grow(t.d.opts)
	if found && !grew {
		return nil
	}
	data, err := encodeFleet(f)
	if err != nil {
		return err
	}
	if err := writeAtomic(t.d.path, fleetName, data); err != nil {
		return err
	}
	t.fleet = f
	return nil
}

// cleanup removes temp files of crashed writers (no writer can be running:
// we hold the lock), deletes retired keys whose tokens have all expired,
// writes the deadline into retired keys from before files carried one, and
// retires all but the newest of several active keys.
func (t *txn) cleanup(stale []string) error {
	for _, name := range stale {
		if err := os.Remove(filepath.Join(t.d.path, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keys: remove stale %s: %w", name, err)
		}
	}
	for _, k := range t.inState(StateRetired, "") {
		deadline := t.d.deleteAfter(k, t.fleet)
		if !t.now.Before(deadline) {
			if err := t.remove(k); err != nil {
				return err
			}
			continue
		}
		if k.meta.DeleteAfter.IsZero() {
			m := k.meta
			m.DeleteAfter = deadline
			if err := t.write(k.with(m)); err != nil {
				return err
			}
		}
	}
	for _, alg := range algsOf(t.keys) {
		active := t.inState(StateActive, alg)
		if len(active) < 2 {
			continue
		}
		keep := newestActive(active, alg)
		for _, k := range active {
			if k != keep {
				if err := t.setState(k, StateRetired); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// algsOf lists the algorithms of keys, sorted.
func algsOf(keys []*key) []string {
	var algs []string
	for _, k := range keys {
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	slices.Sort(algs)
	return algs
}

// newestActive is the active key of alg that signs when there are several:
// the one activated last, ties broken by kid, the same in every instance.
func newestActive(keys []*key, alg string) *key {
	var best *key
	for _, k := range keys {
		if k.meta.State != StateActive || k.alg != alg {
			continue
		}
		if best == nil || k.meta.Activated.After(best.meta.Activated) ||
			(k.meta.Activated.Equal(best.meta.Activated) && k.kid < best.kid) {
			best = k
		}
	}
	return best
}

func (t *txn) find(kid string) *key {
	for _, k := range t.keys {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

// inState lists the keys in state of alg, or of every algorithm when alg is
// empty.
func (t *txn) inState(state, alg string) []*key {
	var out []*key
	for _, k := range t.keys {
		if k.meta.State == state && (alg == "" || k.alg == alg) {
			out = append(out, k)
		}
	}
	return out
}

// oldestNext is the next key of alg published first, the one closest to
// being allowed to sign.
func (t *txn) oldestNext(alg string) *key {
	var best *key
	for _, k := range t.inState(StateNext, alg) {
		if best == nil || k.meta.Published.Before(best.meta.Published) ||
			(k.meta.Published.Equal(best.meta.Published) && k.kid < best.kid) {
			best = k
		}
	}
	return best
}

// create generates a key of alg in state and writes it. A new key is
// published at once; an active one also signs at once.
func (t *txn) create(state, alg string) (*key, error) {
	m := meta{State: state, Created: t.stamp, Published: t.stamp}
	if state == StateActive {
		m.Activated = t.stamp
	}
	k, err := generate(alg, m)
	if err != nil {
		return nil, err
	}
	if t.find(k.kid) != nil {
		return nil, fmt.Errorf("keys: generated kid %s already exists", k.kid)
	}
	return k, t.write(k)
}

// setState moves k to state, stamping the time it entered it.
func (t *txn) setState(k *key, state string) error {
	m := k.meta
	m.State = state
	switch state {
	case StateActive:
		m.Activated = t.stamp
	case StateRetired:
		m.Retired = t.stamp
		m.DeleteAfter = t.d.retireDeadline(t.stamp, t.fleet)
	}
	return t.write(k.with(m))
}

// write stores k, which the transaction owns, and records it so the rescan
// at the end of the change need not parse it again.
func (t *txn) write(k *key) error {
	data, err := encodeKey(k)
	if err != nil {
		return err
	}
	name := k.kid + fileExt
	if err := writeAtomic(t.d.path, name, data); err != nil {
		return err
	}
	k.raw = data
	t.d.cache[name] = k
	for i, old := range t.keys {
		if old.kid == k.kid {
			t.keys[i] = k
			return nil
		}
	}
	t.keys = append(t.keys, k)
	return nil
}

func (t *txn) remove(k *key) error {
	name := k.kid + fileExt
	if err := removeFile(t.d.path, name); err != nil {
		return err
	}
	delete(t.d.cache, name)
	for i, old := range t.keys {
		if old == k {
			t.keys = append(t.keys[:i:i], t.keys[i+1:]...)
			break
		}
	}
	return nil
}
