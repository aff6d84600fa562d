package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Options configures a key directory. Zero durations are taken literally
// (only RetireMargin has a default), so the issuer passes its flags here.
type Options struct {
	// Alg is the algorithm of the access token, which Sign uses: AlgEdDSA
	// (the default) or AlgES256. Only a key of this algorithm signs access
	// tokens.
	Alg string
	// Algs are the algorithms the directory keeps keys for, each with its
	// own lifecycle: one active key per algorithm, one next, its retired
	// ones. Nil means Alg alone; Alg is always kept. The issuer keeps
	// wire.IDTokenAlgorithms(), so that ID tokens can be signed with any of
	// them and switching Alg finds a key that has long been published.
	Algs []string
	// JWKSMaxAge is how long a next key must be published before it may
	// sign: the Cache-Control max-age of the JWKS, after which every relying
	// service has fetched a set that contains it.
	JWKSMaxAge time.Duration
	// AccessTTL is the access token lifetime: a retired key stays published
	// this long (plus RetireMargin) so the tokens it signed keep verifying.
	AccessTTL time.Duration
	// RetireMargin is added to AccessTTL for instances that sign with the
	// old key until their next Reload, and for clock skew. 0 means 1 minute.
	RetireMargin time.Duration
	// Now is the clock; time.Now when nil. Tests inject one so that no
	// lifecycle test sleeps.
	Now func() time.Time
	// Logger receives the errors Watch cannot return; slog.Default() when nil.
	Logger *slog.Logger
}

// DefaultRetireMargin is the RetireMargin used when Options leaves it 0.
const DefaultRetireMargin = time.Minute

// withDefaults fills in defaults and reports every invalid field at once.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Alg == "" {
		o.Alg = wire.AlgEdDSA
	}
	if !wire.ValidAlgorithm(o.Alg) {
		errs = append(errs, fmt.Errorf("keys: algorithm %q: want %s or %s", o.Alg, wire.AlgEdDSA, wire.AlgES256))
	}
	algs := []string{o.Alg}
	for _, a := range o.Algs {
		if !wire.ValidIDTokenAlgorithm(a) {
			errs = append(errs, fmt.Errorf("keys: algorithm %q: want %s, %s or %s", a, wire.AlgEdDSA, wire.AlgES256, wire.AlgRS256))
			continue
		}
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	o.Algs = algs
	if o.JWKSMaxAge < 0 || o.JWKSMaxAge > maxRecorded {
		errs = append(errs, fmt.Errorf("keys: JWKS max-age %s: want 0 to %s", o.JWKSMaxAge, maxRecorded))
	}
	if o.AccessTTL < 0 || o.AccessTTL > maxRecorded {
		errs = append(errs, fmt.Errorf("keys: access TTL %s: want 0 to %s", o.AccessTTL, maxRecorded))
	}
	if o.RetireMargin < 0 {
		errs = append(errs, fmt.Errorf("keys: negative retire margin %s", o.RetireMargin))
	}
	if o.RetireMargin == 0 {
		o.RetireMargin = DefaultRetireMargin
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, errors.Join(errs...)
}

// Info describes one key for `issuer keys list`. Zero times are absent.
type Info struct {
	KID       string
	Alg       string
	State     string
	Created   time.Time
	Published time.Time // entered the JWKS
	Activated time.Time
	Retired   time.Time
	// Promotable is when a next key may start signing without a forced
	// rotation: published + the largest recorded JWKS max-age (or this
	// Dir's own, when larger).
	Promotable time.Time
	// DeleteAfter is when a retired key leaves the JWKS and the directory.
	DeleteAfter time.Time
}

// Dir is a key directory. Its methods are safe for concurrent use; Sign,
// JWKS, List and Ready never wait for the disk or for a lock.
type Dir struct {
	path string
	opts Options

	// mu serialises reloads and changes within this process, so that an
	// older read never replaces a newer snapshot.
	mu    sync.Mutex
	cache map[string]*key // by file name, from the last successful scan; under mu
	// serving is set by Ensure: this Dir signs, so its changes record its
	// AccessTTL and JWKSMaxAge in the directory. Under mu.
	serving bool

	snap atomic.Pointer[snapshot]
}

// snapshot is one consistent view of the directory, precomputed so that the
// hot paths only load a pointer.
type snapshot struct {
	keys   []*key          // JWKS order: active, next, retired, each by kid
	fleet  fleet           // the record the deadlines in infos come from
	active map[string]*key // by algorithm, the key that signs; absent when none
	signer jose.Signer     // the access token's, with active[Options.Alg]; nil when none
	jwks   []byte
	etag   string
	infos  []Info
}

// Open loads the key directory at path and validates every file in it. It
// creates no key and no directory (only the lock file in an existing one): a
// missing directory is an empty set, which Ensure fills.
// A file with loose permissions or bad contents is an error (a *FileError
// per file, joined) and no *Dir is returned.
func Open(path string, opts Options) (*Dir, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("keys: empty key directory path")
	}
	d := &Dir{path: path, opts: o, cache: map[string]*key{}}
	empty, err := d.build(nil, fleet{})
	if err != nil {
		return nil, err
	}
	d.snap.Store(empty)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.load(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the directory's path as given to Open.
func (d *Dir) Path() string { return d.path }

// Reload re-reads the directory, so that changes made by other instances or
// by `issuer keys` take effect without a restart, and then removes what has
// expired (retired keys, temp files of crashed writers) under the lock. It
// also gives retired keys from older versions their deadline and, in a Dir
// that Ensure prepared, records its values again if the record lacks them
// (removed by hand, say). Only
// files whose contents changed are parsed again. On error the previous set
// stays in force.
func (d *Dir) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	res, err := d.load()
	if err != nil {
		return err
	}
	if d.needsCleanup(res) {
		return d.change(nil)
	}
	return nil
}

// Watch calls Reload every interval (5s when interval <= 0) until ctx is
// done, logging failures: the last good set keeps serving meanwhile.
func (d *Dir) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.Reload(); err != nil {
				d.opts.Logger.Error("reloading signing keys", "dir", d.path, "err", err)
			}
		}
	}
}

// List describes every key, in JWKS order.
func (d *Dir) List() []Info {
	return append([]Info(nil), d.snap.Load().infos...)
}

// Ready reports whether there is a key to sign with in every algorithm of
// Options.Algs, for a readiness probe.
func (d *Dir) Ready() error {
	s := d.snap.Load()
	for _, alg := range d.opts.Algs {
		if s.active[alg] == nil {
			return fmt.Errorf("%w for %s", ErrNoActiveKey, alg)
		}
	}
	return nil
}

// scanResult is what one read of the directory found.
type scanResult struct {
	keys       []*key
	stale      []string // temp files left by a writer that crashed
	fleet      fleet
	fleetFound bool // the record file exists
}

// load reads the directory under the shared lock and installs it. A missing
// directory is an empty set. Callers hold d.mu.
func (d *Dir) load() (scanResult, error) {
	if _, err := os.Stat(d.path); errors.Is(err, fs.ErrNotExist) {
		return scanResult{}, d.install(nil, fleet{})
	}
	unlock, err := lockDir(d.path, false)
	if err != nil {
		return scanResult{}, err
	}
	res, err := d.scan()
	unlock()
	if err != nil {
		return scanResult{}, err
	}
	return res, d.install(res.keys, res.fleet)
}

// scan reads every key file. It reports every bad file at once, as the
// issuer's start-up lists every problem. Callers hold d.mu and a flock.
func (d *Dir) scan() (scanResult, error) {
	fi, err := os.Stat(d.path)
	if err != nil {
		return scanResult{}, &FileError{Path: d.path, Err: err}
	}
	if !fi.IsDir() {
		return scanResult{}, &FileError{Path: d.path, Err: errors.New("not a directory")}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return scanResult{}, &FileError{Path: d.path, Err: fmt.Errorf("mode %04o lets group or others plant keys; chmod 700 it", perm)}
	}
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return scanResult{}, &FileError{Path: d.path, Err: err}
	}
	var res scanResult
	var errs []error
	if res.fleet, res.fleetFound, err = d.readFleet(); err != nil {
		errs = append(errs, err)
	}
	cache := make(map[string]*key, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			res.stale = append(res.stale, name)
			continue
		}
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, fileExt) {
			continue
		}
		path := filepath.Join(d.path, name)
		data, err := readKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by hand since ReadDir; our writers hold the lock
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k := d.cache[name]
		if k == nil || !bytes.Equal(k.raw, data) {
			if k, err = decodeKey(name, data); err != nil {
				errs = append(errs, &FileError{Path: path, Err: err})
				continue
			}
		}
		cache[name] = k
		res.keys = append(res.keys, k)
	}
	if len(errs) > 0 {
		return scanResult{}, errors.Join(errs...)
	}
	d.cache = cache
	return res, nil
}

// needsCleanup reports whether a locked pass would change anything, so that
// Reload takes the exclusive lock only when there is work for it.
func (d *Dir) needsCleanup(res scanResult) bool {
	if len(res.stale) > 0 {
		return true
	}
	if _, grows := res.fleet.grow(d.opts); d.serving && (grows || !res.fleetFound) {
		return true
	}
	now, active := d.opts.Now(), map[string]int{}
	for _, k := range res.keys {
		switch k.meta.State {
		case StateActive:
			active[k.alg]++
			if active[k.alg] > 1 {
				return true
			}
		case StateRetired:
			if k.meta.DeleteAfter.IsZero() || !now.Before(d.deleteAfter(k, res.fleet)) {
				return true
			}
		}
	}
	return false
}

// install makes keys and f current unless they are current already.
func (d *Dir) install(keys []*key, f fleet) error {
	keys = sortKeys(keys)
	old := d.snap.Load()
	if old != nil && old.fleet == f && samePointers(old.keys, keys) {
		return nil
	}
	s, err := d.build(keys, f)
	if err != nil {
		return err
	}
	d.snap.Store(s)
	return nil
}

// build precomputes a snapshot of sorted keys.
func (d *Dir) build(keys []*key, f fleet) (*snapshot, error) {
	s := &snapshot{keys: keys, fleet: f, infos: make([]Info, 0, len(keys))}
	s.active = map[string]*key{}
	for _, alg := range algsOf(keys) {
		if k := newestActive(keys, alg); k != nil {
			s.active[alg] = k
		}
	}
	for _, k := range keys {
		info := Info{
			KID: k.kid, Alg: k.alg, State: k.meta.State,
			Created: k.meta.Created, Published: k.meta.Published,
			Activated: k.meta.Activated, Retired: k.meta.Retired,
		}
		switch k.meta.State {
		case StateNext:
			info.Promotable = d.promotable(k, f)
		case StateRetired:
			info.DeleteAfter = d.deleteAfter(k, f)
		}
		s.infos = append(s.infos, info)
	}
	if k := s.active[d.opts.Alg]; k != nil {
		// NewSigner is not free: keep the old one while the active key stays.
		if old := d.snap.Load(); old != nil && old.active[d.opts.Alg] == k {
			s.signer = old.signer
		} else {
			signer, err := newSigner(k, wire.TokenType)
			if err != nil {
				return nil, err
			}
			s.signer = signer
		}
	}
	var err error
	if s.jwks, s.etag, err = buildJWKS(keys); err != nil {
		return nil, err
	}
	return s, nil
}

var stateRank = map[string]int{StateActive: 0, StateNext: 1, StateRetired: 2}

// sortKeys puts keys in JWKS order: active, next, retired, each by kid.
func sortKeys(keys []*key) []*key {
	keys = append([]*key(nil), keys...)
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := stateRank[keys[i].meta.State], stateRank[keys[j].meta.State]
		if ri != rj {
			return ri < rj
		}
		return keys[i].kid < keys[j].kid
	})
	return keys
}

func samePointers(a, b []*key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
