package site

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

// Headers set on proxied requests; any incoming X-Canopy-* header is removed
// first, so a client can never spoof them.
const (
	HeaderUser = "X-Canopy-User"
	HeaderSub  = "X-Canopy-Sub"
	HeaderSid  = "X-Canopy-Sid"
)

// newProxy returns the reverse proxy of proxy mode. Everything about identity
// happens in Rewrite, on the outbound request, after httputil.ReverseProxy
// has removed the hop-by-hop headers: a client's "Connection: X-Canopy-User"
// can then no longer delete the identity that relying sets.
func (s *Site) newProxy(upstream *url.URL, log *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
			s.identify(pr.Out)
			if s.cfg.Tracer != nil {
				// The app's spans join the proxy's trace; a client's own
				// traceparent was the parent of the proxy's span.
				propagation.TraceContext{}.Inject(pr.Out.Context(), propagation.HeaderCarrier(pr.Out.Header))
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("upstream unreachable", "upstream", upstream.String(), "err", err)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<!doctype html><title>Bad gateway</title><h1>The application is not answering</h1><p>Please try again in a moment.</p>\n"))
		},
	}
}

// spoofable reports whether a header name could reach the app as one of the
// identity headers: X-Canopy-* in any case, and the same written with
// underscores (X_Canopy_User), which WSGI, CGI and PHP servers map onto the
// same variable (HTTP_X_CANOPY_USER) as X-Canopy-User.
func spoofable(name string) bool {
	return strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "x-canopy-")
}

// identify prepares the outbound request of a verified one: the access token
// itself (cookie, or the Authorization: Bearer the request came with, in any
// case of the scheme) is removed, and the app gets it only as
// "Authorization: Bearer" with ForwardToken, so an app that logs headers
// cannot leak a token it never asked for; every spoofable identity header is
// removed and the verified identity set. The middleware read the request
// through ssohttp.Authenticate; its result says which token it chose and how it
// came.
func (s *Site) identify(out *http.Request) {
	for k := range out.Header {
		if spoofable(k) {
			delete(out.Header, k)
		}
	}
	if d := s.cfg.Client.Discovery(); d != nil {
		dropCookie(out, d.CookieName)
	}
	a, ok := ssohttp.AuthenticationFrom(out.Context())
	if !ok {
		// A public path: no identity, and no token the app did not ask
		// for (the middleware counts every Bearer token as Canopy's).
		if _, bearer := bearerScheme(out.Header.Get("Authorization")); bearer {
			out.Header.Del("Authorization")
		}
		return
	}
	if a.Bearer {
		out.Header.Del("Authorization")
	}
	if s.cfg.ForwardToken && a.Token != "" {
		out.Header.Set("Authorization", "Bearer "+a.Token)
	}
	out.Header.Set(HeaderUser, a.Claims.Username)
	out.Header.Set(HeaderSub, a.Claims.Subject)
	out.Header.Set(HeaderSid, a.Claims.SessionID)
}

// dropCookie removes every cookie called name from the request's Cookie headers.
func dropCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != name {
			r.AddCookie(c)
		}
	}
}

// bearerScheme reports whether an Authorization value uses the Bearer
// scheme, in any case (RFC 7235).
func bearerScheme(v string) (string, bool) {
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	return v[7:], true
}

// serveProxy proxies r to the upstream, inside a span when tracing is on.
func (s *Site) serveProxy(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tracer == nil {
		s.proxy.ServeHTTP(w, r)
		return
	}
	ctx, span := s.cfg.Tracer.Start(r.Context(), "relying.proxy", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", r.Method),
			attribute.String("server.address", s.cfg.Upstream.Host), attribute.String("canopy.host_pattern", s.cfg.Pattern.String())))
	defer span.End()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.proxy.ServeHTTP(sw, r.WithContext(ctx))
	span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
	if sw.status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(sw.status))
	}
}
