package username

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// tableRow is one line of testdata/usernames.txt.
type tableRow struct {
	line   int
	input  string
	want   string // stored form; empty when an error is expected
	kind   error  // nil, ErrInvalid or ErrReserved
	msg    string // expected error message
	reason string
}

// readTable parses the username table. It fails the test on a malformed row,
// so a typo in the data cannot silently drop a case.
func readTable(tb testing.TB) []tableRow {
	tb.Helper()
	data, err := os.ReadFile("../../testdata/usernames.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var rows []tableRow
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			tb.Fatalf("usernames.txt:%d: want 3 tab-separated fields, got %d", i+1, len(f))
		}
		input, err := strconv.Unquote(f[0])
		if err != nil {
			tb.Fatalf("usernames.txt:%d: input %s: %v", i+1, f[0], err)
		}
		r := tableRow{line: i + 1, input: input, reason: f[2]}
		switch {
		case strings.HasPrefix(f[1], "invalid: "):
			r.kind, r.msg = ErrInvalid, strings.TrimPrefix(f[1], "invalid: ")
		case strings.HasPrefix(f[1], "reserved: "):
			r.kind, r.msg = ErrReserved, strings.TrimPrefix(f[1], "reserved: ")
		default:
			r.want = f[1]
		}
		rows = append(rows, r)
	}
	return rows
}

func TestNormalizeTable(t *testing.T) {
	rows := readTable(t)
	if len(rows) < 40 {
		t.Fatalf("table has %d rows, want at least 40", len(rows))
	}
	for _, r := range rows {
		got, err := Normalize(r.input)
		switch {
		case r.kind == nil && err != nil:
			t.Errorf("line %d (%s): Normalize(%q) = error %q, want %q", r.line, r.reason, r.input, err, r.want)
		case r.kind == nil && got != r.want:
			t.Errorf("line %d (%s): Normalize(%q) = %q, want %q", r.line, r.reason, r.input, got, r.want)
		case r.kind != nil && err == nil:
			t.Errorf("line %d (%s): Normalize(%q) = %q, want error %q", r.line, r.reason, r.input, got, r.msg)
		case r.kind != nil && (!errors.Is(err, r.kind) || err.Error() != r.msg || got != ""):
			t.Errorf("line %d (%s): Normalize(%q) = %q, %v; want \"\", %q wrapping %v", r.line, r.reason, r.input, got, err, r.msg, r.kind)
		}

		// The same rows pin ValidLabel: syntax only, no folding, no reservation.
		wantLabel := r.kind != ErrInvalid && !strings.ContainsAny(r.input, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
		if ValidLabel(r.input) != wantLabel {
			t.Errorf("line %d (%s): ValidLabel(%q) = %v, want %v", r.line, r.reason, r.input, !wantLabel, wantLabel)
		}
		// The built-in list and IsReserved must agree with the table.
		if IsReserved(r.input) != (r.kind == ErrReserved) {
			t.Errorf("line %d (%s): IsReserved(%q) = %v", r.line, r.reason, r.input, !(r.kind == ErrReserved))
		}
	}
}

// TestTableCoversReserved keeps the table and the built-in list in step: a
// name added to the list without a row, or removed from it while a row still
// expects it, fails here.
func TestTableCoversReserved(t *testing.T) {
	reservedRows := map[string]bool{}
	for _, r := range readTable(t) {
		if r.kind == ErrReserved && r.input == strings.ToLower(r.input) {
			reservedRows[r.input] = true
		}
	}
	for _, n := range Reserved() {
		if !reservedRows[n] {
			t.Errorf("reserved name %q has no lowercase row in testdata/usernames.txt", n)
		}
		if !ValidLabel(n) {
			t.Errorf("reserved name %q is not a valid label, so it could never be registered anyway", n)
		}
		delete(reservedRows, n)
	}
	for n := range reservedRows {
		t.Errorf("testdata/usernames.txt expects %q reserved but the built-in list lacks it", n)
	}
}

func TestReservedIsACopy(t *testing.T) {
	r := Reserved()
	r[0] = "alice"
	if IsReserved("alice") || !IsReserved(Reserved()[0]) {
		t.Fatal("Reserved exposes the built-in list to its callers")
	}
}

func TestIsReservedLongOrOdd(t *testing.T) {
	for _, s := range []string{"", strings.Repeat("w", 64), strings.Repeat("W", 1000), "\u212aanopy", "www\x00"} {
		if IsReserved(s) {
			t.Errorf("IsReserved(%q) = true", s)
		}
	}
}

func TestNormalizeAllocs(t *testing.T) {
	// Rejecting a name and accepting a lowercase one must not allocate, so a
	// flood of sign-ups or host lookups costs no garbage.
	for _, s := range []string{"alice", "-bad", "www", "\u0430lice", strings.Repeat("a", 100)} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(s) }); n != 0 {
			t.Errorf("Normalize(%q) allocates %v times", s, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = IsReserved("Admin") }); n != 0 {
		t.Errorf("IsReserved allocates %v times", n)
	}
}
