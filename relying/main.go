// Command relying is Canopy's example relying service: it serves
// {username}.domain pages to their owners (or one fixed host), verifying the
// issuer's access tokens locally, and can front another app as a verifying proxy.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/canopy-sso/canopy/internal/tracing"
	"github.com/canopy-sso/canopy/pkg/envflag"
	"github.com/canopy-sso/canopy/pkg/localhost"
	"github.com/canopy-sso/canopy/pkg/metricsrv"
	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/trustedproxy"
	"github.com/canopy-sso/canopy/pkg/wire"
	"github.com/canopy-sso/canopy/relying/policy"
	"github.com/canopy-sso/canopy/relying/site"
)

type options struct {
	listen, issuer, host, audience, cookieName string
	metricsListen, trustedProxies, upstream    string
	logFormat, tlsCert, tlsKey                 string
	requireGroup, requireAMR                   string
	revocationPoll, leeway, maxAuthAge         time.Duration
	readTimeout                                time.Duration
	forwardToken                               bool
	config                                     string
	configPoll                                 time.Duration
}

// hostFlags describe the one host of the command line; --config replaces them.
var hostFlags = []string{"host", "issuer", "upstream", "forward-token", "require-group", "require-amr", "max-auth-age",
	"audience", "cookie-name"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("relying", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8081", "address to serve on")
	fs.StringVar(&o.issuer, "issuer", "http://domain.localhost:8080", "issuer URL (http only under .localhost)")
	fs.StringVar(&o.host, "host", "{username}.domain.localhost", "host pattern: {username}.domain for per-user hosts, or a fixed host")
	fs.StringVar(&o.audience, "audience", "", "required aud (default: the issuer's cookie domain from discovery)")
	fs.StringVar(&o.cookieName, "cookie-name", "", "access cookie name (default: from discovery)")
	fs.DurationVar(&o.revocationPoll, "revocation-poll", 10*time.Second, "how often the revocation feed is read")
	fs.DurationVar(&o.leeway, "leeway", 30*time.Second, "clock skew allowed on exp, nbf and iat")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "address of a separate /metrics listener (off when empty)")
	fs.StringVar(&o.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-* headers are believed")
	fs.StringVar(&o.upstream, "upstream", "", "proxy mode: forward verified requests to this URL with X-Canopy-* headers")
	fs.BoolVar(&o.forwardToken, "forward-token", false, "proxy mode: also pass the access token to the app as Authorization: Bearer")
	fs.DurationVar(&o.readTimeout, "read-timeout", time.Minute, "longest time to read a whole request, body included (raise it for slow uploads through --upstream; 0 is none)")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS directly with this PEM certificate chain (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&o.requireGroup, "require-group", "", "admit only members of this group (a comma list: any of them); others get 403")
	fs.StringVar(&o.requireAMR, "require-amr", "", "admit only sign-ins with one of these methods (a comma list) in amr: "+wire.AMRMethods()+"; others are asked to sign in again")
	fs.DurationVar(&o.maxAuthAge, "max-auth-age", 0, "admit only sign-ins at most this old (e.g. 10m); older ones are asked to sign in again; 0 is off")
	fs.StringVar(&o.config, "config", "", "policy file (YAML) of every host served, instead of --host, --issuer, --upstream and the rule flags")
	fs.DurationVar(&o.configPoll, "config-poll", 2*time.Second, "how often --config is checked for changes (SIGHUP reloads at once); 0 is never")
	pos, err := envflag.Parse(fs, args, "CANOPY_RELYING_", env)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "Usage: relying [flags]\n       relying check --config FILE\n\n"+
			"Canopy's example relying service: verifies the issuer's access tokens locally.\n"+
			"'relying check' validates the policy file and exits: 0 when it is good, 1 with every problem.\n\n"+
			"Flags (each also read from CANOPY_RELYING_<FLAG>; flags win):\n")
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(stdout, "  --%-17s %s (default %q)\n", f.Name, f.Usage, f.DefValue)
		})
		fmt.Fprint(stdout, "\nExit codes: 0 ok, 1 failure, 2 usage.\n")
		return 0
	}
	check := len(pos) > 0 && pos[0] == "check"
	if check {
		pos = pos[1:]
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected arguments %q", pos)
	}
	if err == nil {
		err = flagConflicts(fs, o.config, check)
	}
	if err != nil {
		fmt.Fprintf(stderr, "relying: %v\nRun 'relying --help' for usage.\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if o.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	cfg, err := o.validate()
	if err != nil {
		fmt.Fprintf(stderr, "relying: %v\n", err)
		return 2
	}
	var pol *policy.Policy
	if o.config != "" {
		if pol, err = readPolicy(o.config); err != nil {
			fmt.Fprintf(stderr, "relying: %v\n", err)
			if check {
				return 1
			}
			return 2
		}
	} else {
		pol = cfg.policy
	}
	if check {
		return checkPolicy(ctx, o.config, pol, stdout)
	}
	if err := serve(ctx, o, cfg, pol, env, log); err != nil {
		fmt.Fprintf(stderr, "relying: %v\n", err)
		return 1
	}
	return 0
}

// settings are the validated options besides the policy.
type settings struct {
	trustedProxies []netip.Prefix
	policy         *policy.Policy // the one host of the flags; nil with --config
}

// validate checks every option at once.
func (o options) validate() (settings, error) {
	var problems []string
	var cfg settings
	var err error
	if cfg.trustedProxies, err = trustedproxy.Parse(o.trustedProxies); err != nil {
		problems = append(problems, "--trusted-proxies: "+err.Error())
	}
	if o.config == "" {
		var h *policy.Host
		h, problems = o.hostFromFlags(problems)
		cfg.policy = &policy.Policy{Issuer: h.Issuer, Hosts: []*policy.Host{h}}
	}
	if o.leeway < 0 || o.leeway > 5*time.Minute {
		problems = append(problems, fmt.Sprintf("--leeway %s: must be between 0 and 5m", o.leeway))
	}
	if o.revocationPoll < 100*time.Millisecond {
		problems = append(problems, fmt.Sprintf("--revocation-poll %s: must be at least 100ms", o.revocationPoll))
	}
	if o.readTimeout < 0 {
		problems = append(problems, fmt.Sprintf("--read-timeout %s: must not be negative", o.readTimeout))
	}
	if o.configPoll < 0 {
		problems = append(problems, fmt.Sprintf("--config-poll %s: must not be negative", o.configPoll))
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		problems = append(problems, fmt.Sprintf("--log-format %q: must be text or json", o.logFormat))
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		problems = append(problems, "--tls-cert and --tls-key go together")
	} else if o.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey); err != nil {
			problems = append(problems, fmt.Sprintf("--tls-cert/--tls-key: %v", err))
		}
	}
	if len(problems) > 0 {
		return cfg, errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
	}
	return cfg, nil
}

// hostFromFlags is the policy entry of --host, --issuer, --upstream and
// the rule flags.
func (o options) hostFromFlags(problems []string) (*policy.Host, []string) {
	h := &policy.Host{}
	var err error
	if h.Pattern, err = policy.ParsePattern(o.host); err != nil {
		problems = append(problems, "--"+err.Error())
	}
	h.OwnerOnly = h.Pattern.PerUser
	if h.Issuer, err = policy.ParseIssuer(o.issuer); err != nil {
		problems = append(problems, "--"+err.Error())
	}
	if o.upstream != "" {
		if h.Upstream, err = policy.ParseUpstream(o.upstream); err != nil {
			problems = append(problems, "--"+err.Error())
		}
		h.ForwardToken = o.forwardToken
	}
	for _, g := range splitList(o.requireGroup) {
		if err := wire.CheckGroupName(g); err != nil {
			problems = append(problems, "--require-group: "+err.Error())
		}
		h.RequireGroups = append(h.RequireGroups, g)
	}
	for _, m := range splitList(o.requireAMR) {
		if !wire.ValidAMR(m) {
			problems = append(problems, fmt.Sprintf("--require-amr %q: methods are %s", m, wire.AMRMethods()))
		}
		h.RequireAMR = append(h.RequireAMR, m)
	}
	if o.maxAuthAge < 0 {
		problems = append(problems, fmt.Sprintf("--max-auth-age %s: must not be negative", o.maxAuthAge))
	}
	h.MaxAuthAge = o.maxAuthAge
	return h, problems
}

// flagConflicts refuses --config beside the flags of one host, and check
// without --config.
func flagConflicts(fs *flag.FlagSet, config string, check bool) error {
	if config == "" {
		if check {
			return errors.New("check needs --config FILE")
		}
		return nil
	}
	var set []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(hostFlags, f.Name) {
			set = append(set, "--"+f.Name)
		}
	})
	if len(set) > 0 {
		return fmt.Errorf("--config replaces %s (set on the command line or as CANOPY_RELYING_*): "+
			"put them in the policy file, or drop --config", strings.Join(set, ", "))
	}
	return nil
}

// splitList splits a comma list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// traceName names the span of a request: health checks get none.
func traceName(r *http.Request) string {
	switch r.URL.Path {
	case "/.canopy/healthz", "/.canopy/readyz":
		return ""
	case site.AuthPath:
		return "relying.forward_auth"
	}
	return "relying.request"
}

func serve(ctx context.Context, o options, cfg settings, pol *policy.Policy, env func(string) (string, bool), log *slog.Logger) error {
	leeway := o.leeway
	if leeway == 0 {
		leeway = sso.NoLeeway
	}
	tp, err := tracing.Setup(ctx, "canopy-relying", env)
	if err != nil {
		return err
	}
	if tp != nil {
		log.Info("tracing on: exporting OTLP spans of requests, verifications, key-set fetches and proxying")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tp.Shutdown(sctx)
		}()
	}
	var clients clientSet
	defer clients.close()
	m := site.NewMetrics(clients.keySetAge)
	rt, err := site.NewRouter(site.RouterConfig{
		Client: func(issuer string) (*sso.Client, error) {
			c, err := sso.New(ctx, sso.Options{
				Issuer: issuer, Audience: o.audience, CookieName: o.cookieName,
				RevocationPoll: o.revocationPoll, Leeway: leeway, HTTPClient: localhost.Client(10 * time.Second), Logger: log,
				Observer: m, Tracer: tp.SSO(),
			})
			if err == nil {
				clients.add(c)
			}
			return c, err
		},
		TrustedProxies: cfg.trustedProxies, Log: log, Tracer: tp.Tracer(),
	}, pol)
	if err != nil {
		return err
	}
	warnUpstreams(ctx, pol, log)
	if o.config != "" {
		go watchPolicy(ctx, o.config, o.configPoll, rt, log)
	}
	h := m.Instrument(tp.Handler(traceName, rt))
	if o.metricsListen != "" {
		addr, err := metricsrv.Serve(ctx, o.metricsListen, m.Registry)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		log.Info("metrics listening", "addr", addr.String(), "path", "/metrics")
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	hs := newHTTPServer(h, o.readTimeout)
	log.Info("relying listening", "addr", ln.Addr().String(), "hosts", hostList(pol), "issuers", strings.Join(pol.Issuers(), " "))
	errc := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			errc <- hs.ServeTLS(ln, o.tlsCert, o.tlsKey)
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// newHTTPServer bounds what a client can hold: headers must arrive within
// 10 s and the whole request within readTimeout, so a body that never
// arrives does not hold a connection forever. Upgraded connections
// (WebSocket) are hijacked and leave these deadlines behind.
func newHTTPServer(h http.Handler, readTimeout time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: readTimeout,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
}
