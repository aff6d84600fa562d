package returnurl

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// The two policies the table's mode column names.
var (
	prod = Policy{Domain: "domain.com"}
	dev  = Policy{Domain: "domain.localhost", AllowHTTP: true}
)

// tableRow is one line of testdata/returnurls.txt.
type tableRow struct {
	line   int
	input  string
	dev    bool
	accept bool
	reason string
}

func (r tableRow) policy() Policy {
	if r.dev {
		return dev
	}
	return prod
}

// readTable parses the return-URL table, failing on a malformed row so that a
// typo cannot silently drop a hostile case.
func readTable(tb testing.TB) []tableRow {
	tb.Helper()
	data, err := os.ReadFile("../../testdata/returnurls.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var rows []tableRow
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			tb.Fatalf("returnurls.txt:%d: want 4 tab-separated fields, got %d", i+1, len(f))
		}
		input, err := strconv.Unquote(f[0])
		if err != nil {
			tb.Fatalf("returnurls.txt:%d: input %s: %v", i+1, f[0], err)
		}
		r := tableRow{line: i + 1, input: input, reason: f[3]}
		switch f[1] {
		case "prod":
		case "dev":
			r.dev = true
		default:
			tb.Fatalf("returnurls.txt:%d: mode %q is neither prod nor dev", i+1, f[1])
		}
		switch f[2] {
		case "accept":
			r.accept = true
		case "reject":
		default:
			tb.Fatalf("returnurls.txt:%d: want %q is neither accept nor reject", i+1, f[2])
		}
		rows = append(rows, r)
	}
	return rows
}

func TestCheckTable(t *testing.T) {
	rows := readTable(t)
	if len(rows) < 60 {
		t.Fatalf("table has %d rows, want at least 60", len(rows))
	}
	for _, r := range rows {
		p := r.policy()
		got, ok := p.Check(r.input)
		if ok != r.accept {
			t.Errorf("line %d (%s): Check(%q) = %v, want %v", r.line, r.reason, r.input, ok, r.accept)
			continue
		}
		if ok && got != r.input {
			t.Errorf("line %d (%s): Check(%q) returned %q, not its input", r.line, r.reason, r.input, got)
		}
		if !ok && got != "" {
			t.Errorf("line %d (%s): rejected Check(%q) returned %q", r.line, r.reason, r.input, got)
		}
		want := "/"
		if r.accept {
			want = r.input
		}
		if c := p.Clean(r.input, "/"); c != want {
			t.Errorf("line %d (%s): Clean(%q, \"/\") = %q, want %q", r.line, r.reason, r.input, c, want)
		}
	}
}

// TestTableHasRequiredPayloads guards against the table losing the payloads
// the brief for this package named.
func TestTableHasRequiredPayloads(t *testing.T) {
	have := map[string]bool{}
	for _, r := range readTable(t) {
		if !r.dev && !r.accept {
			have[r.input] = true
		}
	}
	for _, s := range []string{
		"//evil.com", "///evil.com", `/\evil.com`, `\\evil.com`, "https:evil.com",
		"javascript:alert(1)", "JaVaScRiPt:alert(1)", "DATA:text/html,hi", "VBScript:MsgBox(1)", "vbscript:msgbox(1)",
		"https://domain.com.evil.com/", "https://evildomain.com/", "https://evil.com@domain.com/",
		"https://domain.com@evil.com/", "https://domain.com%2f@evil.com/", "https://a.domain.com/%5cevil.com",
		"https://a.domain.com/%5Cevil.com", "http://a.domain.com/", "https://[::1]/",
	} {
		if !have[s] {
			t.Errorf("table lacks a prod reject row for %q", s)
		}
	}
}

func TestHTTPNeedsLocalhost(t *testing.T) {
	// AllowHTTP alone does not open plain http outside .localhost: a
	// development flag left on in production must not downgrade anything.
	p := Policy{Domain: "domain.com", AllowHTTP: true}
	for raw, want := range map[string]bool{
		"http://a.domain.com/":  false,
		"https://a.domain.com/": true,
	} {
		if _, ok := p.Check(raw); ok != want {
			t.Errorf("Check(%q) = %v, want %v", raw, ok, want)
		}
	}
	// And without AllowHTTP, http is refused even under .localhost.
	if _, ok := (Policy{Domain: "domain.localhost"}).Check("http://a.domain.localhost/"); ok {
		t.Error("http accepted without AllowHTTP")
	}
}

func TestDomainCase(t *testing.T) {
	p := Policy{Domain: "Domain.COM"}
	if _, ok := p.Check("https://a.domain.com/"); !ok {
		t.Error("Domain must be compared case-insensitively")
	}
}

// TestBadDomainFailsClosed: a Policy with a domain no cookie could be set for
// must accept nothing rather than everything.
func TestBadDomainFailsClosed(t *testing.T) {
	urls := []string{
		"https://domain.com/", "https://a.domain.com/", "https://com/", "https://a.com/",
		"https://a..domain.com/", "https://evil.com/", "https://\u212aanopy.com/",
	}
	for _, d := range []string{"", ".", "com", ".domain.com", "domain.com.", "\u212aanopy.com", "domain.com:443", "1.2.3.4", "[::1]"} {
		p := Policy{Domain: d, AllowHTTP: true}
		if err := p.Validate(); err == nil {
			t.Errorf("Validate() accepted Domain %q", d)
		}
		for _, u := range urls {
			if _, ok := p.Check(u); ok {
				t.Errorf("Domain %q: Check(%q) accepted", d, u)
			}
		}
	}
	for _, d := range []string{"domain.com", "domain.localhost", "Domain.Com", "a.b.example"} {
		if err := (Policy{Domain: d}).Validate(); err != nil {
			t.Errorf("Validate(%q) = %v", d, err)
		}
	}
}

func TestMaxLen(t *testing.T) {
	base := "https://a.domain.com/?q="
	fits := base + strings.Repeat("x", MaxLen-len(base))
	if _, ok := prod.Check(fits); !ok {
		t.Error("a URL of exactly MaxLen bytes was rejected")
	}
	if _, ok := prod.Check(fits + "x"); ok {
		t.Error("a URL longer than MaxLen was accepted")
	}
}

func TestCheckAllocs(t *testing.T) {
	for _, raw := range []string{"https://alice.domain.com/p?q=1#f", "https://domain.com.evil.com/", "//evil.com"} {
		if n := testing.AllocsPerRun(100, func() { prod.Check(raw) }); n != 0 {
			t.Errorf("Check(%q) allocates %v times", raw, n)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	for _, bc := range []struct{ name, raw string }{
		{"accept", "https://alice.domain.com/some/path?with=query&and=more#fragment"},
		{"accept-long", "https://alice.domain.com/" + strings.Repeat("segment/", 100)},
		{"reject-host", "https://domain.com.evil.com/some/path"},
		{"reject-scheme", "javascript:alert(document.cookie)"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.raw)))
			for b.Loop() {
				prod.Check(bc.raw)
			}
		})
	}
}
