package username

import (
	"errors"
	"testing"
)

// FuzzNormalize checks the promises callers build on: whatever Normalize
// accepts is a lowercase ASCII DNS label that Normalize maps to itself, and it
// never panics. The seed corpus is the whole table.
func FuzzNormalize(f *testing.F) {
	for _, r := range readTable(f) {
		f.Add(r.input)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := Normalize(name)
		if err != nil {
			if got != "" {
				t.Fatalf("Normalize(%q) returned %q with error %v", name, got, err)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrReserved) {
				t.Fatalf("Normalize(%q) error %v wraps neither sentinel", name, err)
			}
			return
		}
		if !isDNSLabel(got) {
			t.Fatalf("Normalize(%q) = %q, not a lowercase DNS label", name, got)
		}
		if !ValidLabel(got) {
			t.Fatalf("Normalize(%q) = %q, which ValidLabel rejects", name, got)
		}
		if len(got) != len(name) {
			t.Fatalf("Normalize(%q) = %q changed the length", name, got)
		}
		if again, err := Normalize(got); again != got || err != nil {
			t.Fatalf("Normalize(%q) = %q, %v; not idempotent", got, again, err)
		}
		if IsReserved(got) {
			t.Fatalf("Normalize(%q) = %q, a reserved name", name, got)
		}
	})
}

// isDNSLabel is an independent statement of the rules, written differently
// from the package's own code so that one mistake cannot hide in both.
func isDNSLabel(s string) bool {
	if len(s) < 1 || len(s) > 63 {
		return false
	}
	for i, c := range []byte(s) {
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && !(c == '-' && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return len(s) < 4 || s[2:4] != "--"
}
