package sso

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Go's encoding/json accepts duplicate keys (last wins), matches keys
// case-insensitively, replaces invalid UTF-8 and turns 1.5 into an error only
// after allocating. A token whose header or claims mean different things to
// different parsers is an attack, so the header and claims are read with this
// small scanner instead: json.Valid first vouches for the syntax, then the
// scanner walks the top-level members with exact, decoded, unique keys and
// hands each raw value to a typed reader below.

// maxMembers bounds the members of a header or claims object. Real tokens have
// about ten; the bound keeps the duplicate check's quadratic cost tiny.
const maxMembers = 48

var (
	errInvalidJSON = errors.New("invalid JSON")
	errNotObject   = errors.New("not a JSON object")
	errDuplicate   = errors.New("duplicate key")
	errTooMany     = errors.New("too many members")
	errInvalidUTF  = errors.New("invalid UTF-8")
	errWrongType   = errors.New("wrong JSON type")
)

// objectScanner walks the top-level members of one JSON object.
type objectScanner struct {
	data []byte
	pos  int
	n    int
	keys [maxMembers][]byte
}

// init checks data is one valid JSON object in valid UTF-8. The scanner is
// a value the caller keeps on its stack: it is too big to allocate per token.
func (s *objectScanner) init(data []byte) error {
	if !utf8.Valid(data) {
		return errInvalidUTF
	}
	if !json.Valid(data) {
		return errInvalidJSON
	}
	*s = objectScanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return errNotObject
	}
	s.pos++
	return nil
}

func (s *objectScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// next returns the next member's decoded key and raw value; ok is false after
// the last member. The input is known valid, so the scanner only finds spans.
func (s *objectScanner) next() (key, val []byte, ok bool, err error) {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ',' {
		s.pos++
		s.skipSpace()
	}
	if s.pos >= len(s.data) || s.data[s.pos] == '}' {
		return nil, nil, false, nil
	}
	rawKey := s.span()
	if key, err = decodeKey(rawKey); err != nil {
		return nil, nil, false, err
	}
	for i := 0; i < s.n; i++ {
		if bytes.Equal(s.keys[i], key) {
			return nil, nil, false, errDuplicate
		}
	}
	if s.n == maxMembers {
		return nil, nil, false, errTooMany
	}
	s.keys[s.n] = key
	s.n++
	s.skipSpace()
	s.pos++ // ':'
	s.skipSpace()
	return key, s.span(), true, nil
}

// span returns the value starting at pos and moves past it.
func (s *objectScanner) span() []byte {
	d, start := s.data, s.pos
	switch d[start] {
	case '"':
		s.pos = endOfString(d, start)
	case '{', '[':
		depth := 0
		for s.pos < len(d) {
			switch d[s.pos] {
			case '"':
				s.pos = endOfString(d, s.pos)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.pos++
			if depth == 0 {
				break
			}
		}
	default:
		for s.pos < len(d) {
			switch d[s.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return d[start:s.pos]
			}
			s.pos++
		}
	}
	return d[start:s.pos]
}

// endOfString returns the index just past the string starting at d[i] == '"'.
func endOfString(d []byte, i int) int {
	for i++; i < len(d); i++ {
		switch d[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(d)
}

// decodeKey returns a key's text; escapes (rare) go through encoding/json so
// that "\u0061lg" is the same key as "alg".
func decodeKey(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, errNotObject
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// jsonString reads a JSON string value; null and other types are refused.
func jsonString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errWrongType
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// jsonStringIs reports whether raw is the JSON string want, without allocating
// in the common unescaped case (iss and aud must equal known values).
func jsonStringIs(raw []byte, want string) bool {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1:len(raw)-1]) == want
	}
	s, err := jsonString(raw)
	return err == nil && s == want
}

// maxNumericDate bounds exp, iat, nbf and auth_time (year 2255) so that
// nanosecond arithmetic on them cannot overflow an int64.
const maxNumericDate = 9e9

// jsonNumericDate reads a non-negative JSON integer. Fractions, exponents,
// strings and null are refused: SPEC.md says the times are integers.
func jsonNumericDate(raw []byte) (int64, error) {
	if len(raw) == 0 || len(raw) > 12 {
		return 0, errWrongType
	}
	var n int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, errWrongType
		}
		n = n*10 + int64(c-'0')
	}
	if n >= maxNumericDate {
		return 0, errWrongType
	}
	return n, nil
}

// jsonStrings reads a JSON array of strings (amr, groups).
func jsonStrings(raw []byte) ([]string, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, errWrongType
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, errWrongType
	}
	return out, nil
}
