package sqlstore

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/canopy-sso/canopy/issuer/store"
)

// cleanText is the one boundary where text a client chose (a User-Agent, a
// forwarded address, a typed username) is made storable, the same in every
// database (store.MaxText): PostgreSQL refuses invalid UTF-8 and NUL bytes
// in text columns, which SQLite would keep and hand back to the account page
// and the audit log. Invalid bytes and control characters become U+FFFD, and
// the text is cut to store.MaxText bytes without splitting a character.
func cleanText(s string) string {
	if len(s) <= store.MaxText && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s { // an invalid byte ranges as utf8.RuneError, U+FFFD
		if unicode.IsControl(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > store.MaxText {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
