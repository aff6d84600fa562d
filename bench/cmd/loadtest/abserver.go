package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

// The A/B server is this program run again with -serve-ab: a process of its
// own, like relying, serving one page handler on two listeners, behind
// Canopy's net/http middleware on one and bare on the other. The middleware
// comes from an sso.Client wired to the real issuer exactly as relying wires
// its own (discovery, JWKS, revocation feed), and the handler renders
// relying's own page template with the same data relying gives it, so the
// two listeners differ by the middleware alone.

type abConfig struct {
	issuer, authAddr, plainAddr, templates string
	cpuProfile                             string // when set, the server's CPU profile is written there
}

func serveAB(ctx context.Context, cfg abConfig) error {
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pages, err := template.ParseGlob(filepath.Join(cfg.templates, "*.html"))
	if err != nil {
		return err
	}
	client, err := sso.New(ctx, sso.Options{Issuer: cfg.issuer, HTTPClient: localhost.Client(10 * time.Second), Logger: log})
	if err != nil {
		return err
	}
	defer func() { _ = client.Close() }()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := client.Wait(wctx); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	// The bare listener shows the page of the token the load sends, verified once here.
	token := os.Getenv("CANOPY_LOADTEST_TOKEN")
	fixed, err := client.Verify(ctx, token)
	if err != nil {
		return fmt.Errorf("verify the load's token: %w", err)
	}
	page := pageHandler(pages, cfg.issuer, fixed, log)
	authorize := func(r *http.Request, c *sso.Claims) error {
		if label, _, _ := strings.Cut(r.Host, "."); c.Username != label {
			return &ssohttp.ForbiddenError{Message: "This page belongs to " + label + "."}
		}
		return nil
	}
	protect, err := ssohttp.Middleware(client, ssohttp.MiddlewareConfig{Authorize: authorize, Logger: log})
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	var servers []*http.Server
	for _, l := range []struct {
		addr string
		h    http.Handler
	}{{cfg.authAddr, protect(page)}, {cfg.plainAddr, page}} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
		servers = append(servers, hs)
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	return nil
}

// pageHandler is relying's page (relying/site serveApp) for the signed-in
// user, or for fixed when no middleware put claims in the context.
func pageHandler(pages *template.Template, issuer string, fixed *sso.Claims, log *slog.Logger) http.Handler {
	csp := "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self' " + issuer +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		claims, ok := ssohttp.ClaimsFrom(r.Context())
		if !ok {
			claims = fixed
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "private, no-store")
		logout := issuer + "/logout?return_to=" + url.QueryEscape("http://"+r.Host+r.URL.RequestURI())
		var b strings.Builder
		err := pages.ExecuteTemplate(&b, "page.html", map[string]any{
			"User": claims.Username, "Host": r.Host, "PerUser": true,
			"Account": issuer + "/", "Logout": logout,
			"Expires":   time.Unix(claims.Expiry, 0).UTC().Format("15:04:05 UTC"),
			"RefreshJS": ssohttp.RefreshScriptTag(ssohttp.RefreshScriptPath, claims, time.Now()),
		})
		if err != nil {
			log.Error("render", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, b.String())
	})
}

var errStatus = errors.New("unexpected status")
