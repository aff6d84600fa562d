// Package username checks and normalizes usernames, which become DNS labels naming each user's host under the cookie domain.
package username

import "errors"

// MaxLen is the longest username in bytes (and characters, since only ASCII is
// accepted): a DNS label holds at most 63 octets (RFC 1035 §2.3.4).
const MaxLen = 63

// ErrInvalid is wrapped by every error Normalize returns for a name that breaks
// a syntax rule; the error's own message says which rule.
var ErrInvalid = errors.New("invalid username")

// ErrReserved is wrapped by the error Normalize returns for a well-formed name
// that may never be registered, because it names infrastructure (www, mail,
// mta-sts, …) or is on the operator's extra list.
var ErrReserved = errors.New("reserved username")

// ruleError keeps the message a user sees apart from the sentinel a caller
// branches on, so a form can show Error() and a handler can use errors.Is.
type ruleError struct {
	msg  string
	kind error
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.kind }

// The messages read after the field's label ("Username must be 1 to 63
// characters"). They are allocated once, so rejecting a name costs nothing.
var (
	errLength      = &ruleError{"must be 1 to 63 characters", ErrInvalid}
	errCharacters  = &ruleError{"may contain only a-z, 0-9 and -", ErrInvalid}
	errHyphenEnds  = &ruleError{"cannot start or end with -", ErrInvalid}
	errHyphens34   = &ruleError{"cannot have -- in positions 3 and 4", ErrInvalid}
	errReservedMsg = &ruleError{"is reserved", ErrReserved}
)

// Normalize returns the stored form of name, or an error whose message is fit
// to show the person who typed it. Input is case-insensitive: ASCII A-Z fold to
// a-z, and nothing else folds. Any non-ASCII character (Cyrillic 'а', fullwidth
// letters, the Kelvin sign, zero-width spaces and joiners, dotless i) is
// rejected rather than mapped to a look-alike, because two people must never
// own hosts that look the same. Leading and trailing whitespace is rejected
// too, not trimmed: the caller decides what the user meant, this package never
// guesses. Reserved names are the built-in list only; use Rules for an
// operator's extra names.
func Normalize(name string) (string, error) {
	var r *Rules
	return r.Normalize(name)
}

// Lookup returns the stored form of a name typed to find a user who already
// has it: Normalize without the reservation check. A reservation only stops
// new registrations; a user who owned a name before it was reserved (by a
// longer built-in list, an operator's file or the issuer's own host label)
// keeps it, and must still be found to sign in and to be managed.
func Lookup(name string) (string, error) {
	return normalizeExtra(name)
}

// ValidLabel reports whether s is already a stored username in form: the
// syntax rules only, with no case folding and no reservation check. A relying
// service uses it to answer 404 for a host label no user could ever own,
// without asking anyone.
func ValidLabel(s string) bool {
	upper, err := checkSyntax(s)
	return err == nil && !upper
}

// checkSyntax applies every rule except reservation to name as if it were
// ASCII-lowercased, and reports whether lowercasing would change it. The
// character rule runs before the length rule so that "characters" in the
// length message is true: by then every byte is one ASCII character.
func checkSyntax(name string) (upper bool, err error) {
	if name == "" {
		return false, errLength
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			// Bytes of multi-byte UTF-8 sequences are all >= 0x80 and land
			// here, so no Unicode character can slip through as ASCII.
			return false, errCharacters
		}
	}
	if len(name) > MaxLen {
		return false, errLength
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return false, errHyphenEnds
	}
	// RFC 5891 §4.2.3.1 reserves "??--" for IDNA (xn--) and future prefixes.
	if len(name) >= 4 && name[2] == '-' && name[3] == '-' {
		return false, errHyphens34
	}
	return upper, nil
}

// lower returns name with ASCII A-Z mapped to a-z. It must only see names that
// checkSyntax accepted.
func lower(name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
