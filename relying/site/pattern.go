// Package site is the relying example: it serves {username}.domain pages to
// their owners, or one fixed host, behind Canopy's verifying middleware, and
// can front another app as a verifying proxy.
package site

import (
	"fmt"
	"net"
	"strings"

	"github.com/canopy-sso/canopy/pkg/username"
)

// Pattern is the --host pattern: "{username}.domain.com" for per-user hosts
// or a fixed host such as "app.domain.com".
type Pattern struct {
	PerUser bool
	Suffix  string // ".domain.com" when PerUser
	Host    string // the fixed host otherwise
}

// ParsePattern parses a --host value.
func ParsePattern(s string) (Pattern, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if rest, ok := strings.CutPrefix(s, "{username}."); ok {
		if !validHost(rest) {
			return Pattern{}, fmt.Errorf("--host %q: the part after {username}. must be a domain name", s)
		}
		return Pattern{PerUser: true, Suffix: "." + rest}, nil
	}
	if strings.Contains(s, "{") || !validHost(s) {
		return Pattern{}, fmt.Errorf("--host %q: want {username}.domain.com or a host name such as app.domain.com", s)
	}
	return Pattern{Host: s}, nil
}

func validHost(h string) bool {
	if h == "" || strings.HasSuffix(h, ".") || net.ParseIP(h) != nil {
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
	if p.PerUser {
		return p.Suffix[1:]
	}
	return p.Host
}

// Match reports whether host (with or without a port) is served, and the
// username label for a per-user host. A per-user host whose label is not a
// valid username is no match.
func (p Pattern) Match(hostport string) (string, bool) {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if !p.PerUser {
		return "", host == p.Host
	}
	label, ok := strings.CutSuffix(host, p.Suffix)
	if !ok || strings.Contains(label, ".") || !username.ValidLabel(label) {
		return "", false
	}
	return label, true
}

// String is the pattern as given on the command line.
func (p Pattern) String() string {
	if p.PerUser {
		return "{username}" + p.Suffix
	}
	return p.Host
}
