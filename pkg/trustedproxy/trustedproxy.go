// Package trustedproxy decides whose X-Forwarded-* headers are believed: the
// --trusted-proxies list of the issuer and of relying services, parsed once
// here, and the check that a request came straight from one of them.
package trustedproxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Parse parses a comma-separated list of CIDRs; a bare address means that
// one host. Blank items are skipped, and every bad item is reported.
func Parse(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var bad []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%q is not a CIDR or address", part))
				continue
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q is not a CIDR", part))
			continue
		}
		out = append(out, p.Masked())
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return out, nil
}

// From reports whether r comes directly from one of the trusted proxies,
// whose X-Forwarded-* headers may then be believed.
func From(r *http.Request, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
