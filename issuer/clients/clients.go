// Package clients registers the issuer's OpenID Connect clients: it checks a
// registration, makes client ids and secrets, and verifies secrets.
package clients

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// Spec is what an operator asks for with `issuer client add`.
type Spec struct {
	Name                   string
	RedirectURIs           []string
	Public                 bool
	BackchannelLogoutURI   string
	PostLogoutRedirectURIs []string
	IDTokenAlg             string // empty: RS256
	RequireGroups          []string
}

// maxURIs bounds each list; maxURI each URI.
const (
	maxURIs = 20
	maxURI  = 2000
)

// New checks spec and returns the client to store and, for a confidential
// client, its secret, which is shown once and stored only as its hash. The
// error lists every problem at once.
func New(spec Spec, now time.Time) (store.Client, string, error) {
	var errs []error
	if err := checkName(spec.Name); err != nil {
		errs = append(errs, err)
	}
	if len(spec.RedirectURIs) == 0 {
		errs = append(errs, errors.New("at least one --redirect-uri is needed"))
	}
	errs = append(errs, checkURIs("--redirect-uri", spec.RedirectURIs)...)
	errs = append(errs, checkURIs("--post-logout-redirect-uri", spec.PostLogoutRedirectURIs)...)
	if spec.BackchannelLogoutURI != "" {
		errs = append(errs, checkURIs("--backchannel-logout-uri", []string{spec.BackchannelLogoutURI})...)
	}
	alg := spec.IDTokenAlg
	if alg == "" {
		alg = wire.AlgRS256
	}
	if !wire.ValidIDTokenAlgorithm(alg) {
		errs = append(errs, fmt.Errorf("--id-token-alg %q: want one of %s", alg, strings.Join(wire.IDTokenAlgorithms(), ", ")))
	}
	for _, g := range spec.RequireGroups {
		if err := wire.CheckGroupName(g); err != nil {
			errs = append(errs, fmt.Errorf("--require-group: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return store.Client{}, "", err
	}
	id, err := random(16)
	if err != nil {
		return store.Client{}, "", err
	}
	c := store.Client{
		ID: id, Name: spec.Name, Public: spec.Public,
		RedirectURIs: dedupe(spec.RedirectURIs), PostLogoutRedirectURIs: dedupe(spec.PostLogoutRedirectURIs),
		BackchannelLogoutURI: spec.BackchannelLogoutURI, IDTokenAlg: alg,
		RequireGroups: dedupe(spec.RequireGroups), CreatedAt: now,
	}
	if spec.Public {
		return c, "", nil
	}
	secret, err := NewSecret()
	if err != nil {
		return store.Client{}, "", err
	}
	c.SecretHash = HashSecret(secret)
	return c, secret, nil
}

// NewSecret returns a fresh client secret: 256 random bits, base64url.
func NewSecret() (string, error) { return random(32) }

// HashSecret is what the store keeps of a secret: its SHA-256, in hex. A
// secret of 256 random bits cannot be guessed, so a slow password hash
// would only slow every token request (RFC 6819 §5.1.4.1.3 asks for a hash;
// OAuth servers such as Hydra and dex keep high-entropy secrets this way).
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares a presented secret with the stored hash in
// constant time. A public client (no hash) matches nothing.
func SecretMatches(c store.Client, secret string) bool {
	if c.SecretHash == "" || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(c.SecretHash)) == 1
}

func random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("clients: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// checkName accepts what an operator would call an app: 1-64 characters of
// a-z, 0-9, '.', '-' and '_', so it prints safely in lists and logs.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("client name %q: 1 to 64 characters", name)
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("client name %q: use a-z, 0-9, '.', '-' and '_'", name)
		}
	}
	return nil
}

func checkURIs(flag string, uris []string) []error {
	var errs []error
	if len(uris) > maxURIs {
		errs = append(errs, fmt.Errorf("%s: at most %d", flag, maxURIs))
	}
	for _, u := range uris {
		if err := CheckRedirectURI(u); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", flag, u, err))
		}
	}
	return errs
}

// CheckRedirectURI accepts an absolute https URL, or http on a loopback or
// .localhost host (RFC 8252 §7.3, development), without a fragment
// (RFC 6749 §3.1.2), userinfo or control characters. Redirect URIs are
// matched exactly, so nothing is normalised.
func CheckRedirectURI(raw string) error {
	if raw == "" || len(raw) > maxURI {
		return fmt.Errorf("empty or longer than %d characters", maxURI)
	}
	for _, c := range raw {
		if c < 0x21 || c == 0x7f || c > 0x7e || c == '\\' {
			return errors.New("spaces, control characters, backslashes and non-ASCII are not allowed; percent-encode them")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return errors.New("must be an absolute URL with a host")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment")
	case u.User != nil:
		return errors.New("must not have userinfo")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLocal(u.Hostname()) {
			return nil
		}
		return errors.New("must be https (http only on localhost, *.localhost or a loopback address)")
	default:
		return fmt.Errorf("scheme %q: must be https (http only on localhost)", u.Scheme)
	}
}

func isLocal(host string) bool {
	h := strings.ToLower(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func dedupe(l []string) []string {
	out := []string{}
	for _, v := range l {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
