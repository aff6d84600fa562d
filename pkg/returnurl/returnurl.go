// Package returnurl decides whether a return_to URL may be followed, so that the issuer and every relying service send a browser only back to the cookie domain.
package returnurl

import (
	"fmt"
	"strings"
)

// MaxLen is the longest URL Check accepts. It is the request-line budget of
// common servers and proxies (nginx, Apache: 8 KiB), so any URL a relying
// service was actually reached at fits, while a hostile megabyte does not end
// up in Location headers, forms and logs.
const MaxLen = 8192

// Policy validates return URLs for one cookie domain.
//
// Check is deliberately strict and purely syntactic: it parses nothing into
// net/url (whose notion of a URL differs from a browser's) and accepts only
// the shape below, on which Go, RFC 3986 and the WHATWG URL standard agree:
//
//	scheme "://" host [":" port] [path] ["?" query] ["#" fragment]
//
// Each part is held to these rules:
//
//   - scheme is https, in any case (RFC 3986 §3.1 makes it case-insensitive,
//     and every browser agrees); http only when AllowHTTP is set and the host
//     is under ".localhost", which only ever resolves to this machine.
//   - host is the Domain or a name under it on a label boundary, compared
//     without regard to ASCII case. Every label is 1–63 letters, digits and
//     hyphens, not starting or ending with a hyphen; so no userinfo ('@'), no
//     IP literal ('[', or a numeric last label), no percent-encoding, no
//     empty label and no trailing dot can reach the comparison. Punycode
//     labels (xn--…) are plain ASCII DNS names and are accepted.
//   - port, if present, is 1–65535 in canonical decimal (no sign, no leading
//     zero, not empty): cookies ignore ports, so any port on an accepted host
//     is as safe as the default one.
//   - anywhere in the string: only printable ASCII. No control characters or
//     whitespace (browsers silently strip tab and newline, which turns
//     "ht\ttps:" into "https:"), no backslash (browsers read it as '/' in
//     http(s) URLs), no '"', '<' or '>' (browsers always percent-encode them,
//     so only an injection attempt carries them raw), every '%' followed by
//     two hex digits, and no "%5c" (an encoded backslash, which some servers
//     decode and then treat as '/').
//
// The path, query and fragment are otherwise the destination's business:
// "%2e%2e", "%2f", "//evil.com" or "@" after the host cannot change which host
// the browser goes to, and every host under the cookie domain is trusted
// (SPEC.md, "Security model"). Relative URLs ("/account") are rejected: an
// absolute URL is what the relying services send, and the caller's fallback
// covers the issuer's own pages.
type Policy struct {
	Domain    string // cookie domain, e.g. "domain.com" or "domain.localhost"
	AllowHTTP bool   // http:// accepted for hosts under .localhost (development); https always accepted
}

// Check returns raw unchanged and true when it is an acceptable return URL,
// and "" and false otherwise. The URL is never decoded, re-encoded or
// rebuilt, so what was checked is exactly what the browser receives. Check
// does not allocate.
func (p Policy) Check(raw string) (string, bool) {
	if p.ok(raw) {
		return raw, true
	}
	return "", false
}

// Clean returns raw when Check accepts it, else fallback. It is the form
// handlers use: p.Clean(r.FormValue("return_to"), "/").
func (p Policy) Clean(raw, fallback string) string {
	if p.ok(raw) {
		return raw
	}
	return fallback
}

// Validate reports a Domain under which Check could accept nothing, or far
// too much: it must be a host name of at least two labels, as Check requires
// of hosts, and no IP address. A program calls it once at start-up; Check
// itself fails closed on such a domain. Whether the domain is a public suffix
// is the issuer's configuration check, not this package's.
func (p Policy) Validate() error {
	if !validHost(p.Domain) || strings.IndexByte(p.Domain, '.') < 0 {
		return fmt.Errorf("returnurl: cookie domain %q is not a host name of two or more labels", p.Domain)
	}
	return nil
}

func (p Policy) ok(raw string) bool {
	if len(raw) == 0 || len(raw) > MaxLen || !cleanBytes(raw) {
		return false
	}
	var rest string
	var plainHTTP bool
	switch {
	case hasPrefixFold(raw, "https://"):
		rest = raw[len("https://"):]
	case p.AllowHTTP && hasPrefixFold(raw, "http://"):
		rest, plainHTTP = raw[len("http://"):], true
	default:
		// Also every relative reference ("/x", "//evil.com", "/\evil.com"),
		// every other scheme (javascript:, data:, vbscript:, ftp:) and
		// "https:" without "//" (browsers read "https:evil.com" and
		// "https:/evil.com" as https://evil.com; Go does not).
		return false
	}

	// The authority ends at the first '/', '?' or '#'; backslash, the fourth
	// delimiter browsers use, was refused by cleanBytes.
	end := len(rest)
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '/' || c == '?' || c == '#' {
			end = i
			break
		}
	}
	host := rest[:end]
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if !validPort(host[i+1:]) {
			return false
		}
		host = host[:i]
	}
	if !validHost(host) || !underDomain(host, p.Domain) {
		return false
	}
	return !plainHTTP || underLocalhost(host)
}

// cleanBytes refuses every byte that has no business in a URL someone should
// be redirected to, and malformed or dangerous percent-escapes.
func cleanBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f: // controls, space, DEL, every non-ASCII byte
			return false
		case c == '\\' || c == '"' || c == '<' || c == '>':
			return false
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			if s[i+1] == '5' && (s[i+2] == 'c' || s[i+2] == 'C') {
				return false
			}
			i += 2
		}
	}
	return true
}

// validHost reports whether h is a DNS host name of letters, digits and
// hyphens that no browser would parse as an IPv4 address.
func validHost(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	var label string
	for rest := h; rest != ""; {
		label, rest, _ = strings.Cut(rest, ".")
		if !validLabel(label) {
			return false
		}
	}
	// The loop never sees a last empty label: "a." ends with one.
	if h[len(h)-1] == '.' {
		return false
	}
	// WHATWG's "ends in a number" rule turns a host whose last label is
	// numeric ("1.2.3.4", "a.0x7f") into an IPv4 address.
	return !endsInNumber(label)
}

// validLabel is the DNS host-name rule for one label (RFC 1123 §2.1).
func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		if !isLDH(l[i]) {
			return false
		}
	}
	return true
}

// endsInNumber is the WHATWG URL test on a host's last label.
func endsInNumber(label string) bool {
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		for i := 2; i < len(label); i++ {
			if !isHex(label[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if label[i] < '0' || label[i] > '9' {
			return false
		}
	}
	return true
}

// validPort accepts 1–65535 written as browsers and Go both read it.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

// underDomain reports whether host is domain or a subdomain of it on a label
// boundary, so "evildomain.com" is not under "domain.com". A domain of one
// label is never matched: no cookie can be set for a whole top-level domain.
func underDomain(host, domain string) bool {
	if strings.IndexByte(domain, '.') < 0 {
		return false
	}
	if len(host) == len(domain) {
		return equalFoldASCII(host, domain)
	}
	n := len(host) - len(domain)
	return n > 1 && host[n-1] == '.' && equalFoldASCII(host[n:], domain)
}

// underLocalhost reports whether host is under ".localhost", which RFC 6761
// §6.3 reserves for loopback, so plain http never leaves the machine.
func underLocalhost(host string) bool {
	const suffix = ".localhost"
	return len(host) > len(suffix) && equalFoldASCII(host[len(host)-len(suffix):], suffix)
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case of s.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && equalFoldASCII(s[:len(prefix)], prefix)
}

// equalFoldASCII compares ignoring ASCII case only. strings.EqualFold would
// also fold Unicode, matching the Kelvin sign to 'k'; a misconfigured Domain
// must not make that possible.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func isLDH(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-'
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
