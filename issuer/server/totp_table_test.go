package server

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// totpRow is one line of testdata/totp_codes.txt (see its header).
type totpRow struct {
	line             int
	input, want, why string
}

func readTOTPTable(t *testing.T) []totpRow {
	t.Helper()
	data, err := os.ReadFile("../../testdata/totp_codes.txt")
	if err != nil {
		t.Fatal(err)
	}
	var rows []totpRow
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("line %d: %d fields, want 3", i+1, len(f))
		}
		in, err := strconv.Unquote(f[0])
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		rows = append(rows, totpRow{line: i + 1, input: in, want: f[1], why: f[2]})
	}
	if len(rows) < 20 {
		t.Fatalf("only %d rows", len(rows))
	}
	return rows
}

// expandCode fills a table input's placeholders with codes of secret.
func (h *harness) expandCode(input, secret string) string {
	now := h.codeAt(secret, 0)
	shift := func(zero rune) string {
		var b strings.Builder
		for _, r := range now {
			b.WriteRune(zero + (r - '0'))
		}
		return b.String()
	}
	return strings.NewReplacer("{now}", now, "{prev}", h.codeAt(secret, -1), "{next}", h.codeAt(secret, 1),
		"{prev2}", h.codeAt(secret, -2), "{next2}", h.codeAt(secret, 2), "{now:spaced}", now[:3]+" "+now[3:],
		"{now:fullwidth}", shift('０'), "{now:arabic}", shift('٠')).Replace(input)
}

// TestTOTPCodeTable types every row of the table into /login/otp: accepted
// rows sign in, refused ones get the form again with one message and no
// session, and "reused" rows work once only.
func TestTOTPCodeTable(t *testing.T) {
	h := newHarness(t, options{noFactorLimit: true})
	// Mid-step, so that the neighbouring steps are whole steps away.
	h.clock.Advance(time.Duration(15-h.clock.Now().Unix()%30) * time.Second)
	for _, row := range readTOTPTable(t) {
		t.Run(fmt.Sprintf("line %d %s", row.line, row.why), func(t *testing.T) {
			name := fmt.Sprintf("u%d", row.line)
			u := h.createUser(name, "correct horse")
			secret := h.enableTOTP(u)
			input := h.expandCode(row.input, secret)
			for d := -1; d <= 1 && row.want == "reject"; d++ {
				if input == h.codeAt(secret, d) {
					t.Skipf("%q happens to be a right code now", input)
				}
			}
			if row.want == "reused" {
				h.browser().loginTOTP(name, "correct horse", input)
			}
			b := h.browser()
			b.passwordStep(name, "correct horse", "")
			r := b.code(input)
			switch row.want {
			case "accept":
				if r.StatusCode != http.StatusSeeOther || h.sessionCount(u.ID) != 1 {
					t.Fatalf("%q: %d, %d sessions; want 303 and a session\n%s", input, r.StatusCode, h.sessionCount(u.ID), r.body)
				}
			case "reject", "reused":
				want := 0
				if row.want == "reused" {
					want = 1
				}
				if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, codeFailed) || h.sessionCount(u.ID) != want {
					t.Fatalf("%q: %d, %d sessions; want 401 with %q and %d sessions\n%s", input, r.StatusCode, h.sessionCount(u.ID), codeFailed, want, r.body)
				}
			default:
				t.Fatalf("want %q", row.want)
			}
		})
	}
}
