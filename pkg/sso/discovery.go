package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// maxDiscoveryBytes bounds the discovery document.
const maxDiscoveryBytes = 64 << 10

// Discover reads issuerURL's discovery document. Its issuer must equal
// issuerURL exactly (a document served for another issuer is refused), and
// jwks_uri must be an absolute http(s) URL, as must every other URL given.
// client nil means localhost.Client(10 * time.Second).
func Discover(ctx context.Context, issuerURL string, client *http.Client) (*wire.Discovery, error) {
	if client == nil {
		client = localhost.Client(10 * time.Second)
	}
	wellKnown := strings.TrimSuffix(issuerURL, "/") + "/.well-known/openid-configuration"
	res, err := fetchJSON(ctx, client, wellKnown, "", maxDiscoveryBytes)
	if err != nil {
		return nil, fmt.Errorf("sso: discovery: %w", err)
	}
	var d wire.Discovery
	if err := json.Unmarshal(res.body, &d); err != nil {
		return nil, fmt.Errorf("sso: discovery: %s: %w", wellKnown, err)
	}
	if err := checkDiscovery(&d, issuerURL); err != nil {
		return nil, fmt.Errorf("sso: discovery: %s: %w", wellKnown, err)
	}
	return &d, nil
}

// check reports every problem with a discovery document at once.
func checkDiscovery(d *wire.Discovery, issuerURL string) error {
	var errs []error
	if d.Issuer != issuerURL {
		errs = append(errs, fmt.Errorf("issuer is %q, want %q", d.Issuer, issuerURL))
	}
	if d.JWKSURI == "" {
		errs = append(errs, errors.New("jwks_uri is missing"))
	}
	for name, u := range map[string]string{
		"jwks_uri": d.JWKSURI, "canopy_revocation_uri": d.RevocationURI,
		"canopy_refresh_uri": d.RefreshURI, "canopy_login_uri": d.LoginURI,
	} {
		if u != "" && !absoluteHTTP(u) {
			errs = append(errs, fmt.Errorf("%s %q is not an absolute http(s) URL", name, u))
		}
	}
	return errors.Join(errs...)
}

func absoluteHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// Site is how the issuer's tokens reach a relying site: the discovery
// document's cookie and URLs, with Options.CookieName and Options.Audience
// applied. Client.Current returns it; ssohttp builds its SiteConfig from it.
type Site struct {
	// CookieName is the access cookie's exact name (canopy_cookie_name).
	CookieName string
	// CookieDomain is the Domain the access cookie is set with
	// (canopy_cookie_domain), and the tokens' aud.
	CookieDomain string
	// RefreshURL is the issuer's /refresh (canopy_refresh_uri).
	RefreshURL string
	// LoginURL is the issuer's /login (canopy_login_uri).
	LoginURL string
}

// Validate reports every field a browser or net/http would not take as it
// is, at once.
func (s Site) Validate() error {
	var errs []error
	if s.CookieName == "" {
		errs = append(errs, errors.New("cookie name is empty"))
	} else if (&http.Cookie{Name: s.CookieName}).String() == "" {
		errs = append(errs, fmt.Errorf("cookie name %q is not a valid cookie name", s.CookieName))
	}
	if s.CookieDomain == "" {
		errs = append(errs, errors.New("cookie domain is empty"))
	} else if !validCookieDomain(s.CookieDomain) {
		errs = append(errs, fmt.Errorf("cookie domain %q is not a valid cookie domain", s.CookieDomain))
	}
	if !absoluteHTTP(s.RefreshURL) {
		errs = append(errs, fmt.Errorf("refresh URL %q is not an absolute http(s) URL", s.RefreshURL))
	}
	if !absoluteHTTP(s.LoginURL) {
		errs = append(errs, fmt.Errorf("login URL %q is not an absolute http(s) URL", s.LoginURL))
	}
	return errors.Join(errs...)
}

// validCookieDomain reports whether d can be a Domain attribute: dot-separated
// labels of letters, digits and hyphens (net/http would drop anything else,
// logging about it on every response).
func validCookieDomain(d string) bool {
	d = strings.TrimPrefix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
