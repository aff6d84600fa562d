package returnurl

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzCheck holds Check to its promise as an independent parser sees it: an
// accepted URL is returned unchanged, and net/url finds in it an https (or
// development http under .localhost) URL with no userinfo whose host is the
// domain or under it. Go's parser is not a browser's, which is why Check
// refuses the shapes on which they disagree; this target checks that nothing
// Check accepts is read differently by Go.
func FuzzCheck(f *testing.F) {
	for _, r := range readTable(f) {
		f.Add(r.input, r.dev)
	}
	f.Fuzz(func(t *testing.T, raw string, isDev bool) {
		p := prod
		if isDev {
			p = dev
		}
		got, ok := p.Check(raw)
		if c := p.Clean(raw, "fallback"); ok != (c == raw && raw != "fallback") {
			t.Fatalf("Clean and Check disagree on %q", raw)
		}
		if !ok {
			if got != "" {
				t.Fatalf("rejected %q but returned %q", raw, got)
			}
			return
		}
		if got != raw {
			t.Fatalf("Check(%q) returned %q", raw, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q, which net/url cannot parse: %v", got, err)
		}
		host := strings.ToLower(u.Hostname())
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && isDev && strings.HasSuffix(host, ".localhost"):
		default:
			t.Fatalf("accepted %q with scheme %q", got, u.Scheme)
		}
		if u.User != nil || u.Opaque != "" {
			t.Fatalf("accepted %q with userinfo %v or opaque %q", got, u.User, u.Opaque)
		}
		if d := p.Domain; host != d && !strings.HasSuffix(host, "."+d) {
			t.Fatalf("accepted %q whose host %q is not under %q", got, host, d)
		}
		if strings.ContainsAny(got, "\\ \t\r\n\x00") {
			t.Fatalf("accepted %q with a backslash or whitespace", got)
		}
		if port := u.Port(); port != "" && (len(port) > 5 || port[0] == '0' || port > "65535" && len(port) == 5) {
			t.Fatalf("accepted %q with port %q", got, port)
		}
	})
}
