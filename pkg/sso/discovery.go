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
