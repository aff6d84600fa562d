package otpcode

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// tableRow is one line of testdata/totp_codes.txt.
type tableRow struct {
	line        int
	input, want string
	reason      string
}

func readTable(t *testing.T) []tableRow {
	t.Helper()
	data, err := os.ReadFile("../../testdata/totp_codes.txt")
	if err != nil {
		t.Fatal(err)
	}
	var rows []tableRow
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
			t.Fatalf("line %d: input %s: %v", i+1, f[0], err)
		}
		rows = append(rows, tableRow{line: i + 1, input: in, want: f[1], reason: f[2]})
	}
	return rows
}

// expand replaces the placeholders of a table input with codes of secret
// around the step of now.
func expand(t testing.TB, input, secret string, now time.Time) string {
	t.Helper()
	code := func(delta int64) string {
		c, err := Code(secret, Step(now)+delta)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	shift := func(c string, zero rune) string {
		var b strings.Builder
		for _, r := range c {
			b.WriteRune(zero + (r - '0'))
		}
		return b.String()
	}
	now0 := code(0)
	return strings.NewReplacer(
		"{now}", now0, "{prev}", code(-1), "{next}", code(1), "{prev2}", code(-2), "{next2}", code(2),
		"{now:spaced}", now0[:3]+" "+now0[3:],
		"{now:fullwidth}", shift(now0, '０'), "{now:arabic}", shift(now0, '٠'),
	).Replace(input)
}

// TestCheckTable: every row of the table against Check at a fixed time.
func TestCheckTable(t *testing.T) {
	now := time.Unix(1_800_000_015, 0)
	for _, row := range readTable(t) {
		t.Run(fmt.Sprintf("line %d %s", row.line, row.reason), func(t *testing.T) {
			in := expand(t, row.input, secret, now)
			last := Step(now) - 10
			step, err := Check(secret, in, now, last)
			switch row.want {
			case "accept", "reused":
				if err != nil {
					t.Fatalf("Check(%q) = %v, want accepted", in, err)
				}
				if row.want == "reused" {
					if _, err := Check(secret, in, now, step); !errors.Is(err, ErrUsed) {
						t.Fatalf("second Check(%q) = %v, want ErrUsed", in, err)
					}
				}
			case "reject":
				if err == nil {
					t.Fatalf("Check(%q) accepted step %d, want refused", in, step)
				}
			default:
				t.Fatalf("want %q", row.want)
			}
		})
	}
}

// TestCheckSteps: the step returned is the one that matched, and codes of
// steps up to the last used are refused as used.
func TestCheckSteps(t *testing.T) {
	now := time.Unix(1_800_000_015, 0)
	cur := Step(now)
	for _, tc := range []struct {
		name  string
		delta int64
		last  int64
		want  int64
		err   error
	}{
		{"current", 0, cur - 5, cur, nil},
		{"previous", -1, cur - 5, cur - 1, nil},
		{"next", 1, cur - 5, cur + 1, nil},
		{"current after the previous was used", 0, cur - 1, cur, nil},
		{"previous after the current was used", -1, cur, 0, ErrUsed},
		{"current again", 0, cur, 0, ErrUsed},
		{"out of the window", 2, cur - 5, 0, ErrWrong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := Code(secret, cur+tc.delta)
			got, err := Check(secret, code, now, tc.last)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("Check = %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := Check(secret, "12 34 5", now, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a 5-digit code: %v, want ErrMalformed", err)
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := NewRecoveryCodes()
	if len(codes) != RecoveryCount || len(hashes) != RecoveryCount {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 11 || c[5] != '-' || seen[c] {
			t.Fatalf("code %q: want xxxxx-xxxxx, all different", c)
		}
		seen[c] = true
		for _, typed := range []string{c, strings.ToUpper(c), strings.ReplaceAll(c, "-", ""), " " + c[:5] + " " + c[6:] + " "} {
			n, ok := NormalizeRecovery(typed)
			if !ok || HashRecovery(n) != hashes[i] {
				t.Errorf("typed %q does not match code %q", typed, c)
			}
		}
	}
	for _, bad := range []string{"", "abcde-fghi", "abcde-fghijk", "abcde-fghi1", "abcde_fghij", "ａbcde-fghij", "abcde-fghi\x00"} {
		if n, ok := NormalizeRecovery(bad); ok {
			t.Errorf("NormalizeRecovery(%q) = %q, want refused", bad, n)
		}
	}
}

func TestNewKeyAndQR(t *testing.T) {
	k, err := NewKey("domain.com", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Secret) != 32 || !strings.HasPrefix(k.URL, "otpauth://totp/domain.com:alice?") ||
		!strings.Contains(k.URL, "secret="+k.Secret) || !strings.Contains(k.URL, "algorithm=SHA1") {
		t.Fatalf("key = %+v", k)
	}
	uri, err := QRDataURI(k.URL)
	if err != nil || !strings.HasPrefix(string(uri), "data:image/png;base64,iVBORw0KGgo") {
		t.Fatalf("QRDataURI = %.40s…, %v", uri, err)
	}
}
