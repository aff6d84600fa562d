package server

import (
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

// returnRow is one line of testdata/returnurls.txt, the table pkg/returnurl
// is tested against (see its header for the format).
type returnRow struct {
	line   int
	input  string
	dev    bool
	accept bool
}

func readReturnURLs(t *testing.T) []returnRow {
	t.Helper()
	data, err := os.ReadFile("../../testdata/returnurls.txt")
	if err != nil {
		t.Fatal(err)
	}
	var rows []returnRow
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("returnurls.txt:%d: want 4 tab-separated fields, got %d", i+1, len(f))
		}
		in, err := strconv.Unquote(f[0])
		if err != nil {
			t.Fatalf("returnurls.txt:%d: %v", i+1, err)
		}
		if (f[1] != "dev" && f[1] != "prod") || (f[2] != "accept" && f[2] != "reject") {
			t.Fatalf("returnurls.txt:%d: mode %q, want %q", i+1, f[1], f[2])
		}
		rows = append(rows, returnRow{line: i + 1, input: in, dev: f[1] == "dev", accept: f[2] == "accept"})
	}
	return rows
}

// TestReturnToWiring runs every row of the return-URL table through the
// endpoints that take a return_to: dev rows against a development issuer
// (domain.localhost), prod rows against an https issuer (domain.com). The
// rules themselves are pkg/returnurl's; this checks that every endpoint
// uses them and emits the accepted string unchanged.
func TestReturnToWiring(t *testing.T) {
	rows := readReturnURLs(t)
	for _, mode := range []struct {
		name  string
		https bool
	}{{"dev", false}, {"prod", true}} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, options{https: mode.https})
			h.createUser("alice", "correct horse")
			signedIn := h.browser()
			signedIn.login("alice", "correct horse")
			anonymous := h.browser()
			n := 0
			for _, row := range rows {
				if row.dev == mode.https {
					continue
				}
				n++
				want, wantHidden := "/", ""
				if row.accept {
					want, wantHidden = row.input, row.input
				}
				q := url.QueryEscape(row.input)
				t.Run(strconv.Itoa(row.line), func(t *testing.T) {
					r := signedIn.get("/refresh?return_to=" + q)
					if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
						t.Errorf("GET /refresh?return_to=%q: %d to %q, want 303 to %q", row.input, r.StatusCode, r.Header.Get("Location"), want)
					}
					r = signedIn.get("/login?return_to=" + q)
					if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
						t.Errorf("GET /login?return_to=%q signed in: %d to %q, want 303 to %q", row.input, r.StatusCode, r.Header.Get("Location"), want)
					}
					for _, form := range []string{"/login", "/register", "/logout"} {
						r = anonymous.get(form + "?return_to=" + q)
						if got := hidden(r.body, "return_to"); r.StatusCode != http.StatusOK || got != wantHidden {
							t.Errorf("GET %s?return_to=%q: status %d, hidden return_to %q, want %q", form, row.input, r.StatusCode, got, wantHidden)
						}
					}
					// A login whose form was tampered with still goes only where the table allows.
					b := h.browser()
					r = b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse"},
						"return_to": {row.input}, "csrf_token": {b.token()}})
					if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
						t.Errorf("POST /login return_to=%q: %d to %q, want 303 to %q", row.input, r.StatusCode, r.Header.Get("Location"), want)
					}
					// Without a session, /refresh sends the browser to the login form, carrying only an accepted URL.
					r = anonymous.get("/refresh?return_to=" + q)
					wantLogin := "/login"
					if row.accept {
						wantLogin += "?return_to=" + q
					}
					if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != wantLogin {
						t.Errorf("GET /refresh?return_to=%q anonymous: %d to %q, want 303 to %q", row.input, r.StatusCode, r.Header.Get("Location"), wantLogin)
					}
				})
			}
			if n < 15 {
				t.Fatalf("only %d %s rows in the table", n, mode.name)
			}
		})
	}
}
