package policy

import (
	"fmt"
	"net"
	"strings"

	"github.com/canopy-sso/canopy/pkg/username"
)

// Pattern is a host pattern: "{username}.domain.com" for per-user hosts,
// "*.tools.domain.com" for every host one label under a domain, or a fixed
// host such as "app.domain.com".
type Pattern struct {
	PerUser  bool
	Wildcard bool
	Suffix   string // ".domain.com" when PerUser or Wildcard
	Host     string // the fixed host otherwise
}

// ParsePattern parses a --host value or a policy entry's host.
func ParsePattern(s string) (Pattern, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if rest, ok := strings.CutPrefix(s, "{username}."); ok {
		if !validHost(rest) {
			return Pattern{}, fmt.Errorf("host %q: the part after {username}. must be a domain name", s)
		}
		return Pattern{PerUser: true, Suffix: "." + rest}, nil
	}
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		// Two labels at least: "*.com" would claim a whole top-level domain.
		if !validHost(rest) || !strings.Contains(rest, ".") {
			return Pattern{}, fmt.Errorf("host %q: the part after *. must be a domain name of two labels or more", s)
		}
		return Pattern{Wildcard: true, Suffix: "." + rest}, nil
	}
	if strings.ContainsAny(s, "{}*") || !validHost(s) {
		return Pattern{}, fmt.Errorf("host %q: want {username}.domain.com, *.domain.com or a host name such as app.domain.com", s)
	}
	return Pattern{Host: s}, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 || strings.HasSuffix(h, ".") || net.ParseIP(h) != nil {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return false
		}
	}
	return true
}

// Domain is the domain every host of the pattern is under (for the cookie-domain check).
func (p Pattern) Domain() string {
	if p.PerUser || p.Wildcard {
		return p.Suffix[1:]
	}
	return p.Host
}

// Match reports whether host (with or without a port) is served, and the
// username label for a per-user host. A per-user host whose label is not a
// valid username is no match; a wildcard matches exactly one label, as a
// wildcard TLS certificate does.
func (p Pattern) Match(hostport string) (string, bool) {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if !p.PerUser && !p.Wildcard {
		return "", host == p.Host
	}
	label, ok := strings.CutSuffix(host, p.Suffix)
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", false
	}
	if p.PerUser {
		if !username.ValidLabel(label) {
			return "", false
		}
		return label, true
	}
	return "", validHost(label)
}

// String is the pattern as written.
func (p Pattern) String() string {
	switch {
	case p.PerUser:
		return "{username}" + p.Suffix
	case p.Wildcard:
		return "*" + p.Suffix
	}
	return p.Host
}
