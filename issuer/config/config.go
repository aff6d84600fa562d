// Package config holds the issuer's configuration and the one Validate that
// reports every problem with it at once.
package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/canopy-sso/canopy/pkg/trustedproxy"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// Config is every setting of the issuer. Flags and CANOPY_ISSUER_* variables fill it.
type Config struct {
	Listen string
	// URL and CookieDomain are the primary domain's: where people sign in.
	URL          string
	CookieDomain string
	// OtherURLs are the issuer's further root domains (--url given more
	// than once, or a comma list), each with its own discovery and tokens;
	// OtherCookieDomains are their cookie domains in the same order, an
	// empty or missing one meaning its URL's host. Domains lists them all.
	OtherURLs          []string
	OtherCookieDomains []string
	DB                 string
	Keys               string
	Alg                string
	AccessTTL          time.Duration
	JWKSMaxAge         time.Duration
	SessionTTL         time.Duration
	IdleTTL            time.Duration
	RefreshGrace       time.Duration
	// StreamHeartbeat is the revocation stream's heartbeat interval.
	StreamHeartbeat time.Duration
	Registration    string
	ReservedNames   string
	MetricsListen   string
	TrustedProxies  string
	LogFormat       string
	TLSCert         string        // serve HTTPS directly with this certificate chain (PEM)
	TLSKey          string        // and this private key (PEM)
	EventRetention  time.Duration // audit events older than this are deleted; 0 keeps them forever
	IDPs            IDPs          // upstream OpenID providers (--idp)
	PasswordLogin   string        // on, or off for sites that sign in only through IDPs
	// UserPageURL is the account page's "your page" link, {username} its
	// first host label ("https://{username}.domain.com:8443"); empty is
	// the --url's scheme on {username}.<cookie domain>.
	UserPageURL string
	// SQLiteCommit is how a SQLite store commits refresh rotations:
	// "group" (shared transactions, one fsync per batch) or "each" (one
	// transaction and fsync per rotation, for comparison).
	SQLiteCommit string
}

// Default returns the configuration of SPEC.md's defaults.
func Default() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		URL:             "http://domain.localhost:8080",
		DB:              "var/issuer.db",
		Keys:            "var/keys",
		Alg:             wire.AlgEdDSA,
		AccessTTL:       5 * time.Minute,
		JWKSMaxAge:      5 * time.Minute,
		SessionTTL:      720 * time.Hour,
		IdleTTL:         168 * time.Hour,
		RefreshGrace:    30 * time.Second,
		StreamHeartbeat: 10 * time.Second,
		Registration:    "open",
		LogFormat:       "text",
		EventRetention:  DefaultEventRetention,
		PasswordLogin:   "on",
		SQLiteCommit:    "group",
	}
}

// DefaultEventRetention keeps the audit trail a quarter of a year: long
// enough to look into an incident reported late, short enough that the
// table stays bounded.
const DefaultEventRetention = 90 * 24 * time.Hour

// MaxAccessTTL is the longest access token lifetime: relying services reject
// tokens whose exp-iat exceeds their maximum, one hour by default.
const MaxAccessTTL = time.Hour

// Validate reports every problem of c in one error, one problem a line.
// It fills CookieDomain from URL when empty.
func (c *Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var host string
	c.URL, host = checkURL(c.URL, add)
	if c.CookieDomain == "" {
		c.CookieDomain = host
	}
	c.CookieDomain = strings.ToLower(c.CookieDomain)
	if msg := checkCookieDomain(c.CookieDomain, host); msg != "" {
		add("%s", msg)
	}
	c.validateOtherDomains(add)

	if !wire.ValidAlgorithm(c.Alg) {
		add("--alg %q: must be EdDSA or ES256", c.Alg)
	}
	if c.AccessTTL < time.Second || c.AccessTTL > MaxAccessTTL {
		add("--access-ttl %s: must be between 1s and %s", c.AccessTTL, MaxAccessTTL)
	}
	if c.JWKSMaxAge < 0 || c.JWKSMaxAge > 24*time.Hour {
		add("--jwks-max-age %s: must be between 0 and 24h", c.JWKSMaxAge)
	}
	if c.SessionTTL < c.AccessTTL {
		add("--session-ttl %s: must be at least --access-ttl (%s)", c.SessionTTL, c.AccessTTL)
	}
	if c.IdleTTL <= 0 {
		add("--idle-ttl %s: must be positive", c.IdleTTL)
	}
	if c.StreamHeartbeat < 100*time.Millisecond || c.StreamHeartbeat > 15*time.Second {
		add("--stream-heartbeat %s: must be between 100ms and 15s", c.StreamHeartbeat)
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > 5*time.Minute {
		add("--refresh-grace %s: must be between 0 and 5m", c.RefreshGrace)
	}
	if c.Registration != "open" && c.Registration != "closed" {
		add("--registration %q: must be open or closed", c.Registration)
	}
	if c.EventRetention != 0 && c.EventRetention < 24*time.Hour {
		add("--event-retention %s: must be at least 24h, or 0 to keep events forever", c.EventRetention)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("--log-format %q: must be text or json", c.LogFormat)
	}
	if _, err := trustedproxy.Parse(c.TrustedProxies); err != nil {
		add("--trusted-proxies: %v", err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("--tls-cert and --tls-key go together")
	} else if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			add("--tls-cert/--tls-key: %v", err)
		}
	}
	c.validateIDPs(add)
	if c.UserPageURL != "" {
		if msg := checkUserPageURL(c.UserPageURL, c.CookieDomain); msg != "" {
			add("--user-page-url %q: %s", c.UserPageURL, msg)
		}
	}
	if c.SQLiteCommit != "group" && c.SQLiteCommit != "each" {
		add("--sqlite-commit %q: must be group or each", c.SQLiteCommit)
	}
	if c.Listen == "" {
		add("--listen must not be empty")
	}
	if c.DB == "" {
		add("--db must not be empty")
	}
	if c.Keys == "" {
		add("--keys must not be empty")
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
}

// checkURL checks one --url, adding what is wrong with it, and returns
// it as the bare origin and its lowercase host ("" when it has none).
func checkURL(raw string, add func(string, ...any)) (string, string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		add("--url %q is not an absolute URL such as https://domain.com", raw)
		return raw, ""
	case u.Scheme != "https" && u.Scheme != "http":
		add("--url %q must use https (or http under .localhost for development)", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		add("--url %q must be a bare origin: no user, path, query or fragment", raw)
	}
	host := strings.ToLower(u.Hostname())
	origin := u.Scheme + "://" + u.Host
	if u.Scheme == "http" && !devHost(host) {
		add("--url %q: http is allowed only for a host under .localhost with at least two labels (http://domain.localhost:8080); use https", origin)
	}
	if strings.HasSuffix(host, ".") || net.ParseIP(host) != nil {
		add("--url %q: the host must be a domain name without a trailing dot, not an IP address", origin)
	}
	return origin, host
}

// validateOtherDomains checks the further root domains: each URL and
// cookie domain as the primary's, the same scheme as the primary (cookie
// names follow the scheme), and no two domains sharing a host or nesting
// one cookie domain in another, where one domain's access cookie would
// reach the other's hosts.
func (c *Config) validateOtherDomains(add func(string, ...any)) {
	if len(c.OtherCookieDomains) > len(c.OtherURLs) {
		add("--cookie-domain is given %d times for %d --url: give at most one per --url, in the same order",
			len(c.OtherCookieDomains)+1, len(c.OtherURLs)+1)
	}
	hosts := map[string]bool{}
	if u, err := url.Parse(c.URL); err == nil {
		hosts[strings.ToLower(u.Hostname())] = true
	}
	domains := []string{c.CookieDomain}
	for i, raw := range c.OtherURLs {
		origin, host := checkURL(raw, add)
		c.OtherURLs[i] = origin
		if !strings.HasPrefix(origin, c.Scheme()+"://") {
			add("--url %q: every --url must use the first one's scheme (%s)", origin, c.Scheme())
		}
		if host != "" && hosts[host] {
			add("--url %q: its host is another --url's too; each root domain needs its own host", origin)
		}
		hosts[host] = true
		domain := ""
		if i < len(c.OtherCookieDomains) {
			domain = strings.ToLower(c.OtherCookieDomains[i])
		}
		if domain == "" {
			domain = host
		}
		if msg := checkCookieDomain(domain, host); msg != "" {
			add("%s", strings.Replace(msg, "--url", "--url "+origin, 1))
		}
		for _, d := range domains {
			if d == domain || strings.HasSuffix(domain, "."+d) || strings.HasSuffix(d, "."+domain) {
				add("--cookie-domain %q of --url %q overlaps the cookie domain %q: one domain's access cookie would reach the other's hosts", domain, origin, d)
			}
		}
		domains = append(domains, domain)
		if i < len(c.OtherCookieDomains) {
			c.OtherCookieDomains[i] = domain
		} else {
			c.OtherCookieDomains = append(c.OtherCookieDomains, domain)
		}
	}
}

// Domain is one root domain the issuer serves: its URL (the tokens' iss)
// and cookie domain (their aud). Primary is where people sign in.
type Domain struct {
	URL, CookieDomain string
	Primary           bool
}

// Domains lists every root domain, the primary first. Call it after Validate.
func (c *Config) Domains() []Domain {
	ds := []Domain{{URL: c.URL, CookieDomain: c.CookieDomain, Primary: true}}
	for i, u := range c.OtherURLs {
		d := Domain{URL: u}
		if i < len(c.OtherCookieDomains) {
			d.CookieDomain = c.OtherCookieDomains[i]
		}
		ds = append(ds, d)
	}
	return ds
}

// URLFlag is --url: the first value given replaces the default, every
// later one (or a comma list, as CANOPY_ISSUER_URL) adds a root domain.
func (c *Config) URLFlag() flag.Value {
	return &listFlag{first: &c.URL, rest: &c.OtherURLs, what: "URL"}
}

// CookieDomainFlag is --cookie-domain, repeated in --url's order; an empty
// entry of a comma list is its URL's host.
func (c *Config) CookieDomainFlag() flag.Value {
	return &listFlag{first: &c.CookieDomain, rest: &c.OtherCookieDomains, emptyOK: true}
}

// listFlag is a repeatable, comma-separated flag whose first value goes to
// first and the others to rest.
type listFlag struct {
	first   *string
	rest    *[]string
	set     bool
	emptyOK bool
	what    string
}

func (f *listFlag) String() string {
	if f.first == nil {
		return ""
	}
	return strings.Join(append([]string{*f.first}, *f.rest...), ",")
}

func (f *listFlag) Set(v string) error {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" && !f.emptyOK {
			return fmt.Errorf("empty %s in %q", f.what, v)
		}
	}
	if !f.set {
		f.set = true
		*f.first, *f.rest = parts[0], nil
		parts = parts[1:]
	}
	*f.rest = append(*f.rest, parts...)
	return nil
}

// checkUserPageURL returns what is wrong with a --user-page-url, or "".
func checkUserPageURL(raw, cookieDomain string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return "want an http(s) URL such as https://{username}.domain.com"
	}
	if !strings.HasPrefix(rest, "{username}.") || strings.Count(raw, "{username}") != 1 {
		return "{username} must be the first label of the host, once: https://{username}.domain.com"
	}
	u, err := url.Parse(strings.Replace(raw, "{username}", "x", 1))
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "not an absolute URL"
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return "want scheme, host and port only: no user, path, query or fragment"
	}
	host := strings.ToLower(u.Hostname())
	if u.Scheme == "http" && !devHost(host) {
		return "http is allowed only under .localhost; use https"
	}
	if cookieDomain != "" && !strings.HasSuffix(host, "."+cookieDomain) {
		return fmt.Sprintf("the host must be under the cookie domain %s, where the user's session cookie is sent", cookieDomain)
	}
	return ""
}

// UserPage is the link to name's own page: --user-page-url, or
// {name}.<cookie domain> on the --url's scheme (on :8081 when the issuer
// is on .localhost:8080, as make run serves the user pages there). Call
// it after Validate.
func (c *Config) UserPage(name string) string {
	if c.UserPageURL != "" {
		return strings.TrimSuffix(strings.Replace(c.UserPageURL, "{username}", name, 1), "/")
	}
	port := ""
	if strings.HasSuffix(c.URL, ".localhost:8080") {
		port = ":8081"
	}
	return c.Scheme() + "://" + name + "." + c.CookieDomain + port
}

// devHost reports whether host is a development name under .localhost with at
// least two labels: bare "localhost" cannot share cookies (Chromium rejects Domain=localhost).
func devHost(host string) bool {
	return strings.HasSuffix(host, ".localhost") && len(host) > len(".localhost") &&
		!strings.HasPrefix(host, ".")
}

func checkCookieDomain(domain, host string) string {
	switch {
	case domain == "":
		return "--cookie-domain is empty and --url has no host"
	case strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, "."):
		return fmt.Sprintf("--cookie-domain %q: no leading or trailing dot", domain)
	case !strings.Contains(domain, "."):
		return fmt.Sprintf("--cookie-domain %q: a single-label domain cannot carry cookies across subdomains", domain)
	case host != "" && host != domain && !strings.HasSuffix(host, "."+domain):
		return fmt.Sprintf("--cookie-domain %q: must be the host of --url (%s) or a parent of it", domain, host)
	}
	if suffix, _ := publicsuffix.PublicSuffix(domain); suffix == domain {
		return fmt.Sprintf("--cookie-domain %q is a public suffix: browsers refuse cookies for it", domain)
	}
	return ""
}

// HostLabel is the label of the issuer's host right under the cookie domain
// ("idp" for https://idp.domain.com or https://auth.idp.domain.com with
// --cookie-domain domain.com), which is the user page no user may own; ""
// when the issuer is on the cookie domain itself. Call it after Validate.
func (c *Config) HostLabel() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return ""
	}
	below, ok := strings.CutSuffix(strings.ToLower(u.Hostname()), "."+c.CookieDomain)
	if !ok || below == "" {
		return ""
	}
	return below[strings.LastIndexByte(below, '.')+1:]
}

// Secure reports whether the issuer runs on https (production cookie names, Secure, HSTS).
func (c *Config) Secure() bool { return strings.HasPrefix(c.URL, "https://") }

// Scheme is the issuer URL's scheme.
func (c *Config) Scheme() string {
	if c.Secure() {
		return "https"
	}
	return "http"
}

// CookieNames are the issuer's cookie names for its scheme (SPEC.md, Cookies,
// and the README's cookie table). Device is the host-only device cookie a
// successful sign-in leaves, which spares that browser the per-account
// throttle.
type CookieNames struct{ Access, Refresh, CSRF, Device string }

// Cookies returns the cookie names: __Secure-/__Host- prefixed on https, plain in development.
func (c *Config) Cookies() CookieNames {
	if c.Secure() {
		return CookieNames{Access: "__Secure-canopy", Refresh: "__Host-canopy-refresh", CSRF: "__Host-canopy-csrf",
			Device: "__Host-canopy-device"}
	}
	return CookieNames{Access: "canopy", Refresh: "canopy-refresh", CSRF: "canopy-csrf", Device: "canopy-device"}
}
