// Package policy reads relying's policy file: the hosts one relying process
// serves, what each fronts and the rules each applies.
package policy

import (
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

// Policy is a parsed policy file (or the one host of the command-line flags).
type Policy struct {
	// Issuer is the file's issuer, the default of every entry.
	Issuer string
	// Hosts are the entries in file order.
	Hosts []*Host
}

// Host is one entry of the policy: a host pattern and what it gets.
type Host struct {
	// Line is the entry's line in the file (0 for flags).
	Line    int
	Pattern Pattern
	// Issuer is the entry's issuer: its own, or the file's.
	Issuer string
	// Upstream is the app the entry fronts; nil serves relying's own page
	// and answers forward auth only.
	Upstream *url.URL
	// OwnerOnly admits only the user a {username} host is named for.
	OwnerOnly     bool
	RequireGroups []string
	RequireAMR    []string
	// MaxAuthAge, when positive, asks older sign-ins to sign in again.
	MaxAuthAge time.Duration
	// PublicPaths need no sign-in: "/healthz" that path alone, "/public/"
	// everything under it. Matched on the cleaned path (see Public).
	PublicPaths []string
	// ForwardToken passes the access token to the upstream as
	// Authorization: Bearer.
	ForwardToken bool
}

// Match returns the entry serving hostport and, for a {username} entry, the
// username: an exact host beats a {username} pattern, which beats a
// wildcard. Among wildcards (one label each) at most one can match.
func (p *Policy) Match(hostport string) (*Host, string, bool) {
	var perUser, wildcard *Host
	var label string
	for _, h := range p.Hosts {
		l, ok := h.Pattern.Match(hostport)
		if !ok {
			continue
		}
		switch {
		case h.Pattern.PerUser:
			if perUser == nil {
				perUser, label = h, l
			}
		case h.Pattern.Wildcard:
			if wildcard == nil {
				wildcard = h
			}
		default:
			return h, "", true
		}
	}
	if perUser != nil {
		return perUser, label, true
	}
	return wildcard, "", wildcard != nil
}

// Issuers are the distinct issuers of the entries, in file order.
func (p *Policy) Issuers() []string {
	var out []string
	for _, h := range p.Hosts {
		if !slices.Contains(out, h.Issuer) {
			out = append(out, h.Issuer)
		}
	}
	return out
}

// Public reports whether the URL path p needs no sign-in. The path is
// cleaned first ("/public/../admin" is "/admin"), so a public prefix never
// reaches outside itself; a trailing slash survives the cleaning.
func (h *Host) Public(p string) bool {
	if len(h.PublicPaths) == 0 || !strings.HasPrefix(p, "/") {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	for _, pp := range h.PublicPaths {
		if clean == pp || (strings.HasSuffix(pp, "/") && strings.HasPrefix(clean, pp)) {
			return true
		}
	}
	return false
}

// Rule is the entry's group, AMR and auth-age rules as one ssohttp.Rule;
// nil when it has none. The owner check is the caller's: it needs the host.
func (h *Host) Rule() ssohttp.Rule {
	var rules []ssohttp.Rule
	if len(h.RequireGroups) > 0 {
		rules = append(rules, ssohttp.RequireGroup(h.RequireGroups...))
	}
	if len(h.RequireAMR) > 0 {
		rules = append(rules, ssohttp.RequireAMR(h.RequireAMR...))
	}
	if h.MaxAuthAge > 0 {
		rules = append(rules, ssohttp.MaxAuthAge(h.MaxAuthAge))
	}
	if len(rules) == 0 {
		return nil
	}
	return ssohttp.AllOf(rules...)
}
