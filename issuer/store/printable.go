package store

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns text from the store (an event's username, detail or user
// agent, typed by anyone) fit to show on a terminal or a page: every rune that
// is not graphic (newline, carriage return, tab, ESC and the C1 CSI that start
// terminal escape sequences, bidirectional overrides and other format
// characters, line and paragraph separators) is written as a Go escape (\n,
// \x1b, \u202e), every byte that is not UTF-8 as \xNN, and a backslash as
// \\, so that the text cannot forge a line, move the cursor, change the
// terminal's state or reorder what follows it, and still reads unambiguously.
// Stored values are kept as they were typed: this is for display only.
func Printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == ' ' || unicode.IsGraphic(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\\' || (r != ' ' && !unicode.IsGraphic(r)) {
			return false
		}
		i += size
	}
	return true
}
