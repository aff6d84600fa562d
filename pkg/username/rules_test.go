package username

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reserved.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadRules(t *testing.T) {
	path := writeFile(t, "\uFEFF# names we keep for ourselves\n"+
		"billing\n"+
		"\n"+
		"   Careers   \n"+
		"shop # the store front\n"+
		"www\n"+ // already built in: harmless
		"\tpress\r\n"+
		"   # an indented comment\n"+
		"last-line-without-newline")
	r, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 6 {
		t.Errorf("Len() = %d, want 6", r.Len())
	}
	tests := []struct {
		name string
		want string
		err  error
	}{
		{"billing", "", ErrReserved},
		{"BILLING", "", ErrReserved},
		{"careers", "", ErrReserved},
		{"shop", "", ErrReserved},
		{"press", "", ErrReserved},
		{"last-line-without-newline", "", ErrReserved},
		{"www", "", ErrReserved},      // built-in still applies
		{"Admin", "", ErrReserved},    // built-in still applies
		{"alice", "alice", nil},       // everyone else is fine
		{"Billing2", "billing2", nil}, // entries match whole names only
		{"-x", "", ErrInvalid},
	}
	for _, tt := range tests {
		got, err := r.Normalize(tt.name)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
	// The package-level functions know only the built-in list.
	if _, err := Normalize("billing"); err != nil {
		t.Errorf("package Normalize(billing) = %v, want no error", err)
	}
	if IsReserved("billing") || !r.IsReserved("Billing") {
		t.Error("IsReserved mixes the built-in list with a file's names")
	}
}

func TestLoadRulesInvalidEntries(t *testing.T) {
	path := writeFile(t, "good\n-bad\nfine\nab--cd\n\u0430dmin\nsp ace\ntoo-long-"+strings.Repeat("x", 60)+"\n")
	_, err := LoadRules(path)
	if err == nil {
		t.Fatal("LoadRules accepted invalid entries")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not wrap ErrInvalid", err)
	}
	msg := err.Error()
	for _, want := range []string{
		path + `:2: "-bad" cannot start or end with -`,
		path + `:4: "ab--cd" cannot have -- in positions 3 and 4`,
		path + ":5: ",
		path + `:6: "sp ace" may contain only a-z, 0-9 and -`,
		path + ":7: ",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, line := range []string{":1:", ":3:"} {
		if strings.Contains(msg, path+line) {
			t.Errorf("error reports valid line %s:\n%s", line, msg)
		}
	}
}

func TestLoadRulesNoFile(t *testing.T) {
	r, err := LoadRules("")
	if err != nil || r == nil || r.Len() != 0 {
		t.Fatalf(`LoadRules("") = %v, %v; want empty rules`, r, err)
	}
	if _, err := r.Normalize("www"); !errors.Is(err, ErrReserved) {
		t.Errorf("empty rules lost the built-in list: %v", err)
	}
	if _, err := LoadRules(filepath.Join(t.TempDir(), "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestNilRules(t *testing.T) {
	var r *Rules
	if got, err := r.Normalize("Alice"); got != "alice" || err != nil {
		t.Errorf("nil Rules Normalize(Alice) = %q, %v", got, err)
	}
	if !r.IsReserved("www") || r.IsReserved("alice") || r.Len() != 0 {
		t.Error("nil Rules must behave as the built-in list alone")
	}
}

func TestNewRules(t *testing.T) {
	r, err := NewRules("Billing", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsReserved("billing") || !r.IsReserved("SHOP") || r.IsReserved("alice") {
		t.Error("NewRules lost or invented names")
	}
	if _, err := NewRules("ok", "not ok"); err == nil || !strings.Contains(err.Error(), `reserved name 2 "not ok"`) {
		t.Errorf("NewRules with an invalid name: %v", err)
	}
}
