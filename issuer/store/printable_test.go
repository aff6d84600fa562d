package store

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestPrintableTable runs the hostile-text table in testdata/terminal_text.txt.
func TestPrintableTable(t *testing.T) {
	f, err := os.Open("../../testdata/terminal_text.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		inQ, wantQ, ok := strings.Cut(text, "\t")
		in, err1 := strconv.Unquote(inQ)
		want, err2 := strconv.Unquote(wantQ)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("terminal_text.txt:%d: not two quoted strings: %q", line, text)
		}
		n++
		got := Printable(in)
		if got != want {
			t.Errorf("terminal_text.txt:%d: Printable(%q) = %q, want %q", line, in, got, want)
		}
		for _, r := range got {
			if r != ' ' && !unicode.IsGraphic(r) {
				t.Errorf("terminal_text.txt:%d: output %q keeps %U", line, got, r)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d rows read", n)
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"alice", "a\nb", "\x1b[2J", "\xff", "\u202e", `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Printable(s)
		for _, r := range got {
			if r != ' ' && !unicode.IsGraphic(r) {
				t.Fatalf("Printable(%q) = %q keeps %U", s, got, r)
			}
		}
		if Printable(got) != strings.ReplaceAll(got, `\`, `\\`) {
			t.Fatalf("Printable(%q) = %q is not printable text", s, got)
		}
	})
}
