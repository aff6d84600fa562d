package sso

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// NoLeeway, as Config.Leeway or Options.Leeway, asks for no clock-skew
// allowance at all (zero means the 30 s default).
const NoLeeway time.Duration = -1

// Defaults for Config.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultMaxTokenAge = time.Hour
	DefaultCacheSize   = 100_000
)

// maxTokenSize caps a token before any work is done on it. Canopy's tokens are
// under 1 KiB (SPEC.md); 4 KiB leaves room for groups without inviting abuse.
const maxTokenSize = 4096

// RevocationChecker reports whether a session has been revoked.
// *RevocationList is one.
type RevocationChecker interface {
	Revoked(sid string) bool
}

// ClaimsRevocationChecker is a RevocationChecker that also knows user-level
// entries (every session of a user issued before a time), which need the
// token's sub and iat; the verifier asks it instead of Revoked.
// *RevocationList is one.
type ClaimsRevocationChecker interface {
	RevocationChecker
	RevokedClaims(c *Claims) bool
}

// Config configures a Verifier.
type Config struct {
	// Issuer must equal the token's iss (the issuer URL). Required.
	Issuer string
	// Audience must equal the token's aud (the cookie domain). Required.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway (30 s); NoLeeway (any negative value) means none.
	Leeway time.Duration
	// MaxTokenAge bounds exp - iat; zero means DefaultMaxTokenAge (1 h).
	MaxTokenAge time.Duration
	// Algorithms lists the signature algorithms accepted, from EdDSA and
	// ES256; nil means both. The key's alg must be in it and equal the header's.
	Algorithms []string
	// CacheSize bounds the verified-token cache (entries). Zero means
	// DefaultCacheSize; negative disables the cache.
	CacheSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Revoked, when set, is asked about every token's sid, cached or not.
	Revoked RevocationChecker
	// Observer, when set, is told the outcome of every verification (metrics).
	Observer Observer
	// Tracer, when set, records a span for every verification.
	Tracer Tracer
}

// Validate reports every problem with the config at once.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is empty"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is empty"))
	}
	if c.Leeway > time.Hour {
		errs = append(errs, fmt.Errorf("leeway %v is over an hour: it is for clock skew", c.Leeway))
	}
	if c.MaxTokenAge < 0 {
		errs = append(errs, fmt.Errorf("max token age %v is negative", c.MaxTokenAge))
	}
	if c.Algorithms != nil && len(c.Algorithms) == 0 {
		errs = append(errs, errors.New("algorithm list is empty"))
	}
	for _, a := range c.Algorithms {
		if a != wire.AlgEdDSA && a != wire.AlgES256 {
			errs = append(errs, fmt.Errorf("algorithm %q is not EdDSA or ES256", a))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sso: invalid verifier config: %w", err)
	}
	return nil
}

// Verifier verifies Canopy access tokens against a KeySet. It is safe for
// concurrent use.
type Verifier struct {
	keys     KeySet
	gens     generationKeySet // nil when keys cannot change
	issuer   string
	audience string
	leeway   time.Duration
	maxAge   time.Duration
	algs     map[string][]jose.SignatureAlgorithm // allowed alg → the one-element list go-jose wants
	now      func() time.Time
	revoked  RevocationChecker
	observer Observer
	tracer   Tracer
	cache    *tokenCache // nil when disabled
	// joseOnly checks every signature with go-jose, the standard library
	// never: the oracle of the differential test.
	joseOnly bool
}

// NewVerifier returns a Verifier for tokens signed by keys in ks.
func NewVerifier(ks KeySet, cfg Config) (*Verifier, error) {
	err := cfg.Validate()
	if ks == nil {
		err = errors.Join(err, errors.New("sso: nil key set"))
	}
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		keys:     ks,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		leeway:   cfg.Leeway,
		maxAge:   cfg.MaxTokenAge,
		now:      cfg.Now,
		revoked:  cfg.Revoked,
		observer: cfg.Observer,
		tracer:   cfg.Tracer,
		algs:     map[string][]jose.SignatureAlgorithm{},
	}
	v.gens, _ = ks.(generationKeySet)
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.maxAge == 0 {
		v.maxAge = DefaultMaxTokenAge
	}
	if v.now == nil {
		v.now = time.Now
	}
	algs := cfg.Algorithms
	if algs == nil {
		algs = []string{wire.AlgEdDSA, wire.AlgES256}
	}
	for _, a := range algs {
		v.algs[a] = []jose.SignatureAlgorithm{jose.SignatureAlgorithm(a)}
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		v.cache = newTokenCache(size)
	}
	return v, nil
}

// Issuer returns the iss the verifier requires.
func (v *Verifier) Issuer() string { return v.issuer }

// Audience returns the aud the verifier requires (the cookie domain).
func (v *Verifier) Audience() string { return v.audience }

// Verify checks token and returns its claims. The claims may be shared with
// other callers through the cache: treat them as read-only.
//
// Errors wrap one of the package's sentinels (see Reason). ErrExpired,
// ErrRevoked and the claim checks made after the signature come inside a
// *ClaimsError, so an expired token is known to carry a good signature.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	var span Span
	if v.tracer != nil {
		ctx, span = v.tracer.Start(ctx, SpanVerify)
	}
	c, cached, err := v.verify(ctx, token)
	if v.observer != nil || span != nil {
		reason := ""
		if err != nil {
			reason = Reason(err)
		}
		if v.observer != nil {
			v.observer.Verified(reason, cached)
		}
		if span != nil {
			cache, outcome := verifyCold, verifyAccepted
			if cached {
				cache = verifyCached
			}
			if reason != "" {
				outcome = reason
			}
			span.SetAttribute(AttrVerifyCache, cache)
			span.SetAttribute(AttrVerifyOutcome, outcome)
			span.End(err)
		}
	}
	return c, err
}

// verify is Verify; cached reports that the verified-token cache answered.
func (v *Verifier) verify(ctx context.Context, token string) (_ *Claims, cached bool, _ error) {
	if token == "" {
		return nil, false, ErrMissing
	}
	if len(token) > maxTokenSize {
		return nil, false, errorf(ErrMalformed, "token is %d bytes, over %d", len(token), maxTokenSize)
	}
	now := v.now()
	gen := v.generation()
	if v.cache != nil {
		if e := v.cache.get(token); e != nil {
			if e.gen == gen {
				c, err := v.recheck(token, e.claims, now)
				return c, true, err
			}
			// The key set changed since: verify again, its key may be gone.
			v.cache.remove(token)
		}
	}
	c, err := v.verifyCold(ctx, token, now)
	if err != nil {
		return nil, false, err
	}
	if v.cache != nil {
		v.cache.put(token, &cacheEntry{claims: c, gen: gen, deadline: c.Expiry*int64(time.Second) + int64(v.leeway)})
	}
	return c, false, nil
}

// recheck applies to a cached token what can change after it was verified:
// the clock and revocation.
func (v *Verifier) recheck(token string, c *Claims, now time.Time) (*Claims, error) {
	if err := v.checkTimes(c, now); err != nil {
		v.cache.remove(token)
		return nil, &ClaimsError{Err: err, Claims: c}
	}
	if v.isRevoked(c) {
		v.cache.remove(token)
		return nil, &ClaimsError{Err: errorf(ErrRevoked, "sid %q", c.SessionID), Claims: c}
	}
	return c, nil
}

// isRevoked asks the revocation checker about c, by its claims when it
// knows user-level entries, by its sid otherwise.
func (v *Verifier) isRevoked(c *Claims) bool {
	switch r := v.revoked.(type) {
	case nil:
		return false
	case ClaimsRevocationChecker:
		return r.RevokedClaims(c)
	default:
		return r.Revoked(c.SessionID)
	}
}

func (v *Verifier) generation() uint64 {
	if v.gens == nil {
		return 0
	}
	return v.gens.Generation()
}

// verifyCold does the whole check: cheap structural checks, the key lookup,
// the signature (signature.go), then the claims.
func (v *Verifier) verifyCold(ctx context.Context, token string, now time.Time) (*Claims, error) {
	segs, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	var buf [512]byte
	if base64DecodedLen(len(segs.header)) > len(buf) {
		return nil, errorf(ErrMalformed, "header over %d bytes", len(buf))
	}
	n, err := b64.Decode(buf[:], []byte(segs.header))
	if err != nil {
		return nil, errorf(ErrMalformed, "header: %v", err)
	}
	alg, kid, plain, err := v.parseHeader(buf[:n])
	if err != nil {
		return nil, err
	}
	key, err := v.keys.Key(ctx, kid)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoKeys), errors.Is(err, ErrSignature):
		return nil, err
	default:
		return nil, errorf(ErrUnknownKey, "kid %q: %v", kid, err)
	}
	if key.Algorithm != alg {
		// The key decides the algorithm; a header naming another one is forged.
		return nil, errorf(ErrSignature, "header alg %s but key %q is %s", alg, kid, key.Algorithm)
	}
	var payload []byte
	if plain && !v.joseOnly {
		// The header is exactly what the issuer writes (alg, kid, typ) and
		// already checked: the standard library checks the signature over
		// the signing input, as go-jose would (differential_test.go).
		payload, err = checkSignature(key.Key, alg, kid, segs)
	} else {
		// Any other header member (jwk, x5c, cty…): go-jose parses the
		// whole token, so its refusals of those stay the verdict.
		payload, err = v.joseVerify(token, alg, kid, key.Key)
	}
	if err != nil {
		return nil, err
	}
	c, err := v.parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := v.checkClaims(c, now); err != nil {
		return nil, &ClaimsError{Err: err, Claims: c}
	}
	return c, nil
}

// checkClaims checks decoded claims after the signature verified.
func (v *Verifier) checkClaims(c *Claims, now time.Time) error {
	switch {
	case c.Issuer != v.issuer:
		return errorf(ErrClaims, "iss %q, want %q", c.Issuer, v.issuer)
	case c.Audience != v.audience:
		return errorf(ErrClaims, "aud %q, want %q", c.Audience, v.audience)
	case c.Subject == "":
		return errorf(ErrClaims, "sub is missing")
	case c.SessionID == "":
		return errorf(ErrClaims, "sid is missing")
	case c.ID == "":
		return errorf(ErrClaims, "jti is missing")
	case c.Expiry < c.IssuedAt:
		return errorf(ErrClaims, "exp %d before iat %d", c.Expiry, c.IssuedAt)
	case c.Expiry-c.IssuedAt > int64(v.maxAge/time.Second):
		return errorf(ErrClaims, "exp - iat is %ds, over %v", c.Expiry-c.IssuedAt, v.maxAge)
	}
	if err := v.checkTimes(c, now); err != nil {
		return err
	}
	if v.isRevoked(c) {
		return errorf(ErrRevoked, "sid %q", c.SessionID)
	}
	return nil
}

// checkTimes applies the leeway to exp, nbf and iat: the same bound on the
// cold path and on every cache hit.
func (v *Verifier) checkTimes(c *Claims, now time.Time) error {
	n, l := now.UnixNano(), int64(v.leeway)
	switch {
	case n > c.Expiry*int64(time.Second)+l:
		return errorf(ErrExpired, "exp %d, now %d, leeway %v", c.Expiry, now.Unix(), v.leeway)
	case c.NotBefore*int64(time.Second) > n+l:
		return errorf(ErrClaims, "nbf %d is in the future (now %d, leeway %v)", c.NotBefore, now.Unix(), v.leeway)
	case c.IssuedAt*int64(time.Second) > n+l:
		return errorf(ErrClaims, "iat %d is in the future (now %d, leeway %v)", c.IssuedAt, now.Unix(), v.leeway)
	}
	return nil
}

// algAllowed reports whether the raw header alg value is an allowed
// algorithm and returns its canonical name without allocating.
func (v *Verifier) algAllowed(raw []byte) (string, bool) {
	for a := range v.algs {
		if jsonStringIs(raw, a) {
			return a, true
		}
	}
	return "", false
}

// sortedAlgs is for messages only.
func (v *Verifier) sortedAlgs() []string {
	out := make([]string, 0, len(v.algs))
	for a := range v.algs {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}
