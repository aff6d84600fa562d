package server

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/throttle"
	"github.com/canopy-sso/canopy/issuer/web"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/trustedproxy"
	"github.com/canopy-sso/canopy/pkg/username"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// Deps are what the server is built from; main wires them.
type Deps struct {
	Config   config.Config // validated
	Store    store.Store
	Keys     *keys.Dir
	Hasher   *password.Hasher
	Throttle *throttle.Limiter
	Names    *username.Rules
	Log      *slog.Logger
	Metrics  *metrics.Issuer  // nil records nothing
	Now      func() time.Time // time.Now when nil
	// FactorThrottle limits second-factor attempts; nil means a limiter
	// stricter per account than the password one, on Now.
	FactorThrottle *throttle.Limiter
	// UpstreamTimeout bounds each call to an upstream provider;
	// DefaultUpstreamTimeout when zero.
	UpstreamTimeout time.Duration
	// StreamHeartbeat is the revocation stream's heartbeat interval;
	// DefaultStreamHeartbeat when zero.
	StreamHeartbeat time.Duration
	// StreamMaxSubscribers and StreamMaxPerClient bound the revocation
	// streams of the instance and of one client address; the defaults when zero.
	StreamMaxSubscribers, StreamMaxPerClient int
	// BackchannelClient delivers back-channel logout tokens; nil: a client
	// with a timeout that follows no redirect.
	BackchannelClient *http.Client
	// BackchannelPoll is how often the outbox is read when nothing woke the
	// worker; DefaultBackchannelPoll when zero.
	BackchannelPoll time.Duration
	// BackchannelHousekeep is how often sessions that ran out are found
	// and the outbox pruned; DefaultBackchannelHousekeep when zero.
	BackchannelHousekeep time.Duration
}

// Server serves the issuer's endpoints.
type Server struct {
	cfg      config.Config
	cookies  config.CookieNames
	store    store.Store
	keys     *keys.Dir
	hasher   *password.Hasher
	throttle *throttle.Limiter
	// factorThrottle limits TOTP and recovery-code attempts.
	factorThrottle  *throttle.Limiter
	names           *username.Rules
	tmpl            *web.Templates
	verifier        *sso.Verifier
	log             *slog.Logger
	metrics         *metrics.Issuer
	now             func() time.Time
	feeds           *feedCache // the revocation feeds, built at most once per commit or feedTTL
	feedCap         int        // entries of the second revocation feed; DefaultFeedCap
	hub             *revHub    // follows the revocation log for the streams
	hubCancel       context.CancelFunc
	hubWG           sync.WaitGroup
	streamHeartbeat time.Duration

	refreshKey []byte // HMAC key deriving successor refresh tokens, shared by every instance
	csrfKey    []byte
	mfaKey     []byte // HMAC key of pending sign-ins and TOTP enrolments
	sessionKey []byte // HMAC key of session cookies (session_cookie.go)
	deviceKey  []byte // HMAC key of device cookies
	webauthn   *webauthn.WebAuthn
	origin     string // the issuer's own origin, for Origin checks
	csp        string
	upstreams  map[string]*upstream // --idp providers by name
	// domains are the root domains served, the primary first (domains.go).
	domains []*domain
	bc      *backchannel // the back-channel logout worker
}

// New builds a Server. It reads (or creates once) the server secrets in the store.
func New(ctx context.Context, d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	tmpl, err := web.Load()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: d.Config, cookies: d.Config.Cookies(), store: d.Store, keys: d.Keys, hasher: d.Hasher,
		throttle: d.Throttle, names: d.Names, tmpl: tmpl, log: d.Log, metrics: d.Metrics, now: d.Now,
		origin: d.Config.URL, factorThrottle: d.FactorThrottle,
	}
	if d.UpstreamTimeout <= 0 {
		d.UpstreamTimeout = DefaultUpstreamTimeout
	}
	s.upstreams = newUpstreams(d.Config, d.Config.URL, d.UpstreamTimeout, d.Now)
	s.feeds, s.feedCap = newFeedCache(d.Now), DefaultFeedCap
	s.streamHeartbeat = cmp.Or(d.StreamHeartbeat, DefaultStreamHeartbeat)
	s.hub = newRevHub(d.Store, d.Log, cmp.Or(d.StreamMaxSubscribers, DefaultStreamMaxSubscribers),
		cmp.Or(d.StreamMaxPerClient, DefaultStreamMaxPerClient))
	s.store = notifyingStore{Store: d.Store, committed: func() { s.feeds.invalidate(); s.hub.wake(); s.bc.wake() }}
	if s.factorThrottle == nil {
		s.factorThrottle = throttle.New(factorThrottleConfig(d.Now))
	}
	gen := func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}
	if s.refreshKey, err = d.Store.Secret(ctx, "refresh-hmac", gen); err != nil {
		return nil, fmt.Errorf("server: refresh secret: %w", err)
	}
	if s.csrfKey, err = d.Store.Secret(ctx, "csrf-hmac", gen); err != nil {
		return nil, fmt.Errorf("server: csrf secret: %w", err)
	}
	// Derived rather than one more stored secret: a separate key for a
	// separate purpose, with nothing more to create, copy or back up.
	kdf := hmac.New(sha256.New, s.csrfKey)
	kdf.Write([]byte("canopy second-factor key"))
	s.mfaKey = kdf.Sum(nil)
	kdf = hmac.New(sha256.New, s.csrfKey)
	kdf.Write([]byte("canopy session-cookie key"))
	s.sessionKey = kdf.Sum(nil)
	kdf = hmac.New(sha256.New, s.csrfKey)
	kdf.Write([]byte("canopy device-cookie key"))
	s.deviceKey = kdf.Sum(nil)
	if s.webauthn, err = newWebAuthn(d.Config.CookieDomain, s.origin); err != nil {
		return nil, err
	}
	if s.domains, err = newDomains(d.Config, &dirKeySet{dir: d.Keys}, d.Now); err != nil {
		return nil, err
	}
	s.verifier = s.primary().verifier
	if err := s.ensureInternalClients(ctx); err != nil {
		return nil, err
	}
	scheme := d.Config.Scheme()
	// form-action must also allow the 303 after a form post, which goes to any
	// host under the cookie domain (Chromium applies form-action to redirects).
	// script-src and connect-src: /static/passkeys.js and its fetch() calls
	// to /webauthn/; no inline script anywhere.
	s.csp = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; " +
		"frame-ancestors 'none'; form-action 'self'"
	for _, dom := range d.Config.Domains() {
		s.csp += fmt.Sprintf(" %[1]s://%[2]s:* %[1]s://*.%[2]s:*", scheme, dom.CookieDomain)
	}
	if d.Config.Secure() {
		s.csp = strings.ReplaceAll(s.csp, ":*", "")
	}
	// The account page's link form is answered with a 303 to a provider.
	for _, p := range d.Config.IDPs {
		if u, err := url.Parse(p.Issuer); err == nil {
			s.csp += " " + u.Scheme + "://" + u.Host
		}
	}
	s.prefetchUpstreams(ctx)
	s.startHub(d.Store)
	s.startBackchannel(d.BackchannelClient, cmp.Or(d.BackchannelPoll, DefaultBackchannelPoll),
		cmp.Or(d.BackchannelHousekeep, DefaultBackchannelHousekeep))
	return s, nil
}

// startHub starts following the revocation log: woken by this instance's
// commits (notifyingStore), by the store's watcher for other instances'
// (PostgreSQL LISTEN/NOTIFY), and every hubRecheck.
func (s *Server) startHub(st store.Store) {
	var ctx context.Context
	ctx, s.hubCancel = context.WithCancel(context.Background())
	if w, ok := st.(store.RevocationWatcher); ok {
		s.hub.recheck = hubRecheckWatched
		s.hubWG.Go(func() { _ = w.WatchRevocations(ctx, s.hub.wake) })
	}
	s.hubWG.Go(func() { s.hub.run(ctx) })
}

// Close ends every revocation stream and the work behind them; call it when
// the HTTP server starts shutting down (http.Server.RegisterOnShutdown),
// since open streams would otherwise hold the shutdown until its timeout.
// It returns once the hub's goroutines have ended; calling it again is harmless.
func (s *Server) Close() {
	s.hub.close()
	s.hubCancel()
	s.hubWG.Wait()
	s.stopBackchannel()
}

// Handler returns the issuer's HTTP handler.
func (s *Server) Handler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = s.ipExtractor()
	e.HTTPErrorHandler = s.errorHandler
	e.Use(middleware.RequestID())
	e.Use(s.logRequests)
	// Before the body limit, so that its 413 page carries the headers too.
	e.Use(s.securityHeaders)
	e.Use(middleware.BodyLimit("64K"))
	e.Use(s.domainGate)

	e.GET("/.well-known/jwks.json", s.jwks)
	e.GET("/.well-known/openid-configuration", s.discovery)
	e.GET(wire.PathRevocation, s.revokedFeed)
	e.GET(wire.PathRevocationV2, s.revocationFeed)
	e.GET(wire.PathRevocationStream, s.revocationStream)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.StaticFS("/static", web.Static())

	e.GET("/login", s.loginForm)
	e.POST("/login", s.login, s.parseForm)
	e.GET("/login/otp", s.secondFactorForm)
	e.POST("/login/otp", s.secondFactor, s.parseForm)
	e.GET("/login/upstream/:name", s.upstreamStart)
	e.GET("/login/upstream/:name/callback", s.upstreamCallback)
	e.POST("/login/upstream/signup", s.upstreamSignup, s.parseForm)
	e.POST("/account/upstream/link", s.accountLink, s.parseForm)
	e.POST("/account/upstream/unlink", s.accountUnlink, s.parseForm)
	e.GET("/register", s.registerForm)
	e.POST("/register", s.register, s.parseForm)
	e.GET("/refresh", s.refreshRedirect)
	e.POST("/refresh", s.refreshAPI)
	e.OPTIONS("/refresh", s.refreshPreflight)
	e.GET(pathHandover, s.handover)
	e.GET("/logout", s.logoutForm)
	e.POST("/logout", s.logout, s.parseForm)
	e.GET("/", s.account)
	e.POST("/account/signout", s.signOutSession, s.parseForm)
	e.GET("/account/totp", s.totpForm)
	e.POST("/account/totp", s.enableTOTP, s.parseForm)
	e.POST("/account/totp/remove", s.removeTOTP, s.parseForm)
	e.POST("/account/recovery-codes", s.newRecoveryCodes, s.parseForm)
	e.POST("/account/password", s.changePassword, s.parseForm)
	e.GET("/account/passkeys", s.passkeysPage)
	e.POST("/account/passkeys/remove", s.removePasskey, s.parseForm)
	e.POST("/webauthn/register/begin", s.passkeyRegisterBegin)
	e.POST("/webauthn/register/finish", s.passkeyRegisterFinish)
	e.POST("/webauthn/login/begin", s.passkeyLoginBegin)
	e.POST("/webauthn/login/finish", s.passkeyLoginFinish)
	e.POST("/webauthn/2fa/begin", s.passkeySecondBegin)
	e.POST("/webauthn/2fa/finish", s.passkeySecondFinish)
	s.routeProvider(e)
	return e
}

func (s *Server) ipExtractor() echo.IPExtractor {
	prefixes, _ := trustedproxy.Parse(s.cfg.TrustedProxies)
	if len(prefixes) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range prefixes {
		_, n, err := net.ParseCIDR(p.String())
		if err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: under no-referrer Chromium sends
		// "Origin: null" on the issuer's own form posts, which checkCSRF refuses.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.cfg.Secure() {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		return next(c)
	}
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		s.metrics.Request(c.Path(), c.Response().Status, s.now().Sub(start))
		level := slog.LevelInfo
		if quietPath(req.URL.Path) {
			level = slog.LevelDebug
		}
		// Only the path: query strings carry return URLs, and lines stay short.
		s.log.Log(req.Context(), level, "request", "id", c.Response().Header().Get(echo.HeaderXRequestID), "method", req.Method,
			"path", req.URL.Path, "status", c.Response().Status, "ip", c.RealIP(),
			"duration_ms", float64(s.now().Sub(start).Microseconds())/1000)
		return nil
	}
}

// parseForm reads a form body up front, so that a body over the limit is a
// 413 rather than looking like a missing CSRF token.
func (s *Server) parseForm(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if !strings.HasPrefix(req.Header.Get(echo.HeaderContentType), echo.MIMEApplicationForm) {
			return next(c) // multipart and others: parsed, and size-limited, by FormValue
		}
		err := req.ParseForm()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "That form was too large.")
		}
		// Any other unreadable form is left to the handler: it fails the CSRF check.
		return next(c)
	}
}

// quietPath reports machine endpoints polled by every relying service, logged at debug level.
func quietPath(p string) bool {
	return strings.HasPrefix(p, "/.well-known/") || p == wire.PathRevocation || p == wire.PathRevocationV2 || p == wire.PathRevocationStream || p == "/healthz" || p == "/readyz"
}

func (s *Server) healthz(c echo.Context) error { return c.String(http.StatusOK, "ok\n") }

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready: store", "err", err)
		return c.String(http.StatusServiceUnavailable, "store unreachable\n")
	}
	if err := s.keys.Ready(); err != nil {
		s.log.Warn("not ready: keys", "err", err)
		return c.String(http.StatusServiceUnavailable, "no signing key loaded\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

func randomID(n int) string { return store.RandomToken(n) }

// clientAddr is the throttling key of the client: the address, or its /64 for IPv6.
func clientAddr(c echo.Context) string {
	a, err := netip.ParseAddr(c.RealIP())
	if err != nil {
		return c.RealIP()
	}
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

// truncate cuts s to at most n bytes, never inside a UTF-8 sequence (the
// store cleans what it keeps, but a cut must not make invalid text of valid).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
