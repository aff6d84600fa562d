package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/pkg/localhost"
)

// Sign-in at an upstream OpenID provider (--idp): the authorization code
// flow with PKCE (S256), state and nonce, the id_token verified by go-oidc
// against the provider's discovery and JWKS. upstream_flow.go runs the
// flow, upstream_claims.go turns a verified id_token into a Canopy sign-in,
// upstream_signup.go and upstream_account.go are the pages after it.

// DefaultUpstreamTimeout bounds every call to a provider (discovery, JWKS,
// token, userinfo): a provider that is slow gets a clear page, not a hang.
const DefaultUpstreamTimeout = 10 * time.Second

// signingAlgs are the id_token algorithms Canopy accepts, whatever a
// provider's discovery says: asymmetric only. "none" and the HMAC family
// (which a provider would key with the client secret, known to the client)
// are never accepted.
var signingAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// upstream is one configured provider. Its discovery is fetched lazily: at
// the first sign-in that needs it (and by a background attempt at start),
// never blocking start-up; a failed fetch is tried again by the next
// sign-in, at most once per upstreamRetry.
type upstream struct {
	cfg     config.IDP
	client  *http.Client
	timeout time.Duration
	now     func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	lastTry  time.Time
	lastErr  error
}

// upstreamRetry spaces discovery attempts of a provider that is down, so a
// crowd of sign-ins does not each wait on it.
const upstreamRetry = 5 * time.Second

// errNoDiscovery: the provider's discovery could not be read.
var errNoDiscovery = errors.New("provider discovery unavailable")

func newUpstreams(cfg config.Config, redirectBase string, timeout time.Duration, now func() time.Time) map[string]*upstream {
	out := map[string]*upstream{}
	for _, p := range cfg.IDPs {
		out[p.Name] = &upstream{
			cfg: p, timeout: timeout, now: now,
			// *.localhost dials loopback, like every Go client of Canopy's.
			client: localhost.Client(timeout),
			oauth: oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Scopes: p.Scopes,
				RedirectURL: redirectBase + "/login/upstream/" + p.Name + "/callback"},
		}
	}
	return out
}

// ctx carries the provider's HTTP client for go-oidc and x/oauth2, bounded by the timeout.
func (u *upstream) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, u.timeout)
	ctx = oidc.ClientContext(ctx, u.client)
	return context.WithValue(ctx, oauth2.HTTPClient, u.client), cancel
}

// discover returns the provider's verifier and OAuth 2 config, fetching
// discovery when it has not been read yet.
func (u *upstream) discover(parent context.Context) (*oidc.IDTokenVerifier, oauth2.Config, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.verifier != nil {
		return u.verifier, u.oauth, nil
	}
	if !u.lastTry.IsZero() && u.now().Sub(u.lastTry) < upstreamRetry {
		return nil, u.oauth, fmt.Errorf("%w: %w", errNoDiscovery, u.lastErr)
	}
	u.lastTry = u.now()
	ctx, cancel := u.ctx(parent)
	defer cancel()
	p, err := oidc.NewProvider(ctx, u.cfg.Issuer)
	if err != nil {
		u.lastErr = err
		return nil, u.oauth, fmt.Errorf("%w: %w", errNoDiscovery, err)
	}
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		u.lastErr = err
		return nil, u.oauth, fmt.Errorf("%w: %w", errNoDiscovery, err)
	}
	var algs []string
	for _, a := range meta.Algs {
		if slices.Contains(signingAlgs, a) && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(meta.Algs) == 0 {
		algs = []string{oidc.RS256} // OpenID Connect Discovery: RS256 when the list is absent
	}
	if len(algs) == 0 {
		u.lastErr = fmt.Errorf("its id_token_signing_alg_values_supported %q has no asymmetric algorithm", meta.Algs)
		return nil, u.oauth, fmt.Errorf("%w: %w", errNoDiscovery, u.lastErr)
	}
	u.provider = p
	u.verifier = p.Verifier(&oidc.Config{ClientID: u.cfg.ClientID, SupportedSigningAlgs: algs, Now: u.now})
	u.oauth.Endpoint = p.Endpoint()
	// The client secret goes in the POST body or Basic header as the
	// provider says; AuthStyleAutoDetect tries Basic first.
	u.oauth.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
	u.lastErr = nil
	return u.verifier, u.oauth, nil
}

// userInfo returns the provider's userinfo client, when it has an endpoint.
func (u *upstream) userInfoProvider() *oidc.Provider {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.provider == nil || u.provider.UserInfoEndpoint() == "" {
		return nil
	}
	return u.provider
}

// prefetch tries discovery once in the background, so the first person to
// sign in does not wait for it; a failure is logged and tried again later.
func (s *Server) prefetchUpstreams(ctx context.Context) {
	for _, u := range s.upstreams {
		go func() {
			if _, _, err := u.discover(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("upstream provider discovery failed; sign-ins will try again", "idp", u.cfg.Name,
					"issuer", u.cfg.Issuer, "err", err)
			}
		}()
	}
}

// sortedUpstreams lists the providers in configuration order, for the sign-in page.
func (s *Server) sortedUpstreams() []*upstream {
	out := make([]*upstream, 0, len(s.cfg.IDPs))
	for _, p := range s.cfg.IDPs {
		out = append(out, s.upstreams[p.Name])
	}
	return out
}
