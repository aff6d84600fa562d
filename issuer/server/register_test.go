package server

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

// usernameRow is one line of testdata/usernames.txt (see its header).
type usernameRow struct {
	line  int
	input string
	want  string // the stored form, or "invalid: …" / "reserved: …"
}

func readUsernames(t *testing.T) []usernameRow {
	t.Helper()
	data, err := os.ReadFile("../../testdata/usernames.txt")
	if err != nil {
		t.Fatal(err)
	}
	var rows []usernameRow
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("usernames.txt:%d: want 3 tab-separated fields, got %d", i+1, len(f))
		}
		in, err := strconv.Unquote(f[0])
		if err != nil {
			t.Fatalf("usernames.txt:%d: %v", i+1, err)
		}
		rows = append(rows, usernameRow{line: i + 1, input: in, want: f[1]})
	}
	return rows
}

// TestRegisterUsernames: every invalid or reserved name of the shared table
// is refused with 400 and its field message, and nothing is stored.
func TestRegisterUsernames(t *testing.T) {
	h := newHarness(t, options{})
	b := h.browser()
	tok := b.token()
	var checked int
	for _, row := range readUsernames(t) {
		kind, msg, ok := strings.Cut(row.want, ": ")
		if !ok || (kind != "invalid" && kind != "reserved") {
			continue
		}
		checked++
		t.Run(strconv.Itoa(row.line)+" "+row.input, func(t *testing.T) {
			r := b.post("/register", url.Values{"username": {row.input}, "password": {"correct horse"}, "csrf_token": {tok}})
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body:\n%s", r.StatusCode, r.body)
			}
			if want := html.EscapeString("Username " + msg + "."); !strings.Contains(r.body, want) {
				t.Errorf("body lacks the field message %q:\n%s", want, r.body)
			}
			if len(setCookies(r)) != 0 {
				t.Errorf("a refused sign-up set cookies %v", r.Header.Values("Set-Cookie"))
			}
		})
	}
	if checked < 40 {
		t.Fatalf("only %d invalid or reserved rows in testdata/usernames.txt", checked)
	}
	users, err := h.store.ListUsers(context.Background())
	if err != nil || len(users) != 0 {
		t.Fatalf("refused sign-ups stored users %v (%v)", users, err)
	}
}

// TestRegister covers the outcomes of the sign-up form other than name syntax.
func TestRegister(t *testing.T) {
	h := newHarness(t, options{})
	h.createUser("taken", "correct horse")
	gone := h.createUser("gone", "correct horse")
	if err := h.store.DeleteUser(context.Background(), gone.ID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	good := "http://alice.domain.localhost:8081/welcome?x=1"
	tests := []struct {
		name, username, password, returnTo string
		status                             int
		message                            string // in the body (HTML-escaped), or the Location on 303
	}{
		{"success with a valid return_to", "alice", "correct horse", good, http.StatusSeeOther, good},
		{"success with a hostile return_to", "alice2", "correct horse", "http://evil.localhost/", http.StatusSeeOther, "/"},
		{"success without return_to", "alice3", "correct horse", "", http.StatusSeeOther, "/"},
		{"password of exactly 8", "eight", "12345678", "", http.StatusSeeOther, "/"},
		{"password of exactly 128", "onetwentyeight", strings.Repeat("p", 128), "", http.StatusSeeOther, "/"},
		{"password of 8 multi-byte characters", "accents", strings.Repeat("é", 8), "", http.StatusSeeOther, "/"},
		{"password too short", "short", "1234567", "", http.StatusBadRequest, "Password must be at least 8 characters."},
		{"password of 7 multi-byte characters", "short2", strings.Repeat("é", 7), "", http.StatusBadRequest, "Password must be at least 8 characters."},
		{"password too long", "long", strings.Repeat("p", 129), "", http.StatusBadRequest, "Password must be at most 128 characters."},
		{"password of invalid UTF-8", "binary", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "", http.StatusBadRequest, "Password must be valid text."},
		{"empty password", "empty", "", "", http.StatusBadRequest, "Password must be at least 8 characters."},
		{"bad name and bad password together", "-x-", "short", "", http.StatusBadRequest, "Password must be at least 8 characters."},
		{"taken", "taken", "correct horse", "", http.StatusConflict, "That username is taken"},
		{"taken, other case", "TaKeN", "correct horse", "", http.StatusConflict, "That username is taken"},
		{"taken by a deleted user", "gone", "correct horse", "", http.StatusConflict, "That username is taken"},
		{"reserved", "admin", "correct horse", "", http.StatusBadRequest, "Username is reserved."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			r := b.post("/register", url.Values{"username": {tc.username}, "password": {tc.password},
				"return_to": {tc.returnTo}, "csrf_token": {b.token()}})
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body:\n%s", r.StatusCode, tc.status, r.body)
			}
			_, err := h.store.UserByName(context.Background(), strings.ToLower(tc.username))
			if tc.status != http.StatusSeeOther {
				if !strings.Contains(r.body, html.EscapeString(tc.message)) {
					t.Errorf("body lacks %q:\n%s", tc.message, r.body)
				}
				if setCookies(r)[h.cfg.Cookies().Access] != nil {
					t.Error("a refused sign-up signed in")
				}
				if tc.status == http.StatusBadRequest && err == nil {
					t.Error("a refused sign-up stored the user")
				}
				return
			}
			if got := r.Header.Get("Location"); got != tc.message {
				t.Errorf("Location %q, want %q", got, tc.message)
			}
			set := setCookies(r)
			for _, name := range []string{h.cfg.Cookies().Access, h.cfg.Cookies().Refresh} {
				if set[name] == nil || set[name].Value == "" {
					t.Errorf("no %s cookie after sign-up", name)
				}
			}
			if err != nil {
				t.Errorf("user not stored: %v", err)
			}
			// Signed in as at login: the account page greets the new user.
			if acct := b.get("/"); acct.StatusCode != http.StatusOK || !strings.Contains(acct.body, strings.ToLower(tc.username)) {
				t.Errorf("account page after sign-up: status %d", acct.StatusCode)
			}
		})
	}
}

// TestRegistrationClosed: with --registration closed both the form and the
// post answer 403, and nothing is created.
func TestRegistrationClosed(t *testing.T) {
	h := newHarness(t, options{registration: "closed"})
	b := h.browser()
	tok := b.token()
	tests := []struct {
		name string
		req  request
	}{
		{"GET form", request{target: "/register"}},
		{"GET form with return_to", request{target: "/register?return_to=" + url.QueryEscape("http://alice.domain.localhost/")}},
		{"POST with a valid token", request{method: http.MethodPost, target: "/register",
			form: url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {tok}}}},
		{"POST without a token", request{method: http.MethodPost, target: "/register",
			form: url.Values{"username": {"alice"}, "password": {"correct horse"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(tc.req)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", r.StatusCode)
			}
			if !strings.Contains(r.body, "Sign-up is closed") || strings.Contains(r.body, `name="password"`) {
				t.Errorf("want the closed page, not a form:\n%s", r.body)
			}
		})
	}
	if _, err := h.store.UserByName(context.Background(), "alice"); err == nil {
		t.Fatal("a closed registration created a user")
	}
	if r := b.get("/login"); strings.Contains(r.body, `href="/register`) {
		t.Error("the login form links to a closed sign-up")
	}
}
