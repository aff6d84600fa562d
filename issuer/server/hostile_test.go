package server

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hostileRow is one line of testdata/forms/hostile_requests.txt (see its header).
type hostileRow struct {
	line                   int
	name                   string
	signedIn               bool
	method, target, header string
	body                   string
	want                   int // 0: any status below 500
}

func readHostile(t *testing.T) []hostileRow {
	t.Helper()
	data, err := os.ReadFile("../../testdata/forms/hostile_requests.txt")
	if err != nil {
		t.Fatal(err)
	}
	var rows []hostileRow
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			t.Fatalf("hostile_requests.txt:%d: want 7 tab-separated fields, got %d", i+1, len(f))
		}
		r := hostileRow{line: i + 1, name: f[0], method: f[2]}
		switch f[1] {
		case "anon":
		case "user":
			r.signedIn = true
		default:
			t.Fatalf("hostile_requests.txt:%d: as %q is neither anon nor user", i+1, f[1])
		}
		for j, dst := range []*string{&r.target, &r.header, &r.body} {
			if *dst, err = strconv.Unquote(f[3+j]); err != nil {
				t.Fatalf("hostile_requests.txt:%d: field %d %s: %v", i+1, 4+j, f[3+j], err)
			}
		}
		if f[6] != "<500" {
			if r.want, err = strconv.Atoi(f[6]); err != nil || r.want < 100 || r.want >= 500 {
				t.Fatalf("hostile_requests.txt:%d: want %q is neither a status below 500 nor <500", i+1, f[6])
			}
		}
		rows = append(rows, r)
	}
	return rows
}

var repeatPattern = regexp.MustCompile(`\{(\d+)\*([^}]*)\}`)

// expand fills in {csrf}, {origin} and {N*TEXT}.
func expand(s, csrf, origin string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "{csrf}", csrf), "{origin}", origin)
	return repeatPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := repeatPattern.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[1])
		return strings.Repeat(sub[2], n)
	})
}

// leaks are fragments of Go error strings, panics and driver messages that
// must never reach a client.
var leaks = []string{
	"goroutine ", "panic", "runtime error", "nil pointer", ".go:", "sqlite", "sql: ", "SQL", "strconv.",
	"invalid memory", "echo:", "multipart:", "http: ", "unexpected EOF", "argon2", "json: ", "template:",
	"no such file", "permission denied", "context canceled", "deadline exceeded", "store: ", "password: ",
}

// TestHostileRequests: no request, however malformed, gets a 5xx or a body
// that shows Go internals, and none can inject a header or markup.
func TestHostileRequests(t *testing.T) {
	rows := readHostile(t)
	if len(rows) < 60 {
		t.Fatalf("only %d hostile requests", len(rows))
	}
	h := newHarness(t, options{trustedProxies: "127.0.0.1/32"})
	h.createUser("alice", "correct-horse")
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			b := h.browser()
			// Each row gets its own client address, so earlier rows' failures never throttle it.
			b.header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(row.line%250+1))
			if row.signedIn {
				b.login("alice", "correct-horse")
			}
			tok := b.token()
			req := request{method: row.method, target: expand(row.target, tok, h.origin()), header: http.Header{}}
			chunked := false
			if row.header != "" {
				for _, line := range strings.Split(expand(row.header, tok, h.origin()), "\n") {
					name, value, ok := strings.Cut(line, ": ")
					if !ok {
						t.Fatalf("line %d: header %q is not Name: value", row.line, line)
					}
					if name == "X-Test-Chunked" {
						chunked = true
						continue
					}
					req.header[http.CanonicalHeaderKey(name)] = append(req.header[http.CanonicalHeaderKey(name)], value)
				}
			}
			if row.body != "" {
				var body io.Reader = strings.NewReader(expand(row.body, tok, h.origin()))
				if chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
				req.body = body
			}
			r := b.do(req)
			if r.StatusCode >= 500 || (row.want != 0 && r.StatusCode != row.want) {
				want := "below 500"
				if row.want != 0 {
					want = strconv.Itoa(row.want)
				}
				t.Errorf("line %d: status %d, want %s; body:\n%.2000s", row.line, r.StatusCode, want, r.body)
			}
			for _, leak := range leaks {
				if strings.Contains(r.body, leak) {
					t.Errorf("line %d: body shows %q:\n%.2000s", row.line, leak, r.body)
				}
			}
			if r.Header.Get("X-Injected") != "" || strings.Contains(r.body, "<script>") {
				t.Errorf("line %d: a header or markup was injected: %q", row.line, r.Header)
			}
		})
	}
	if r := h.browser().get("/readyz"); r.StatusCode != http.StatusOK {
		t.Fatalf("after the hostile requests: /readyz %d", r.StatusCode)
	}
}
