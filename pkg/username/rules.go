package username

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Rules are the username rules of one deployment: the built-in reserved list
// plus the operator's extra names (the issuer's --reserved-names file). A nil
// *Rules has no extra names, so code that may run without a file needs no
// special case. A Rules is read-only after creation and safe for concurrent use.
type Rules struct {
	extra map[string]struct{}
}

// NewRules returns Rules whose extra reserved names are names, each
// ASCII-lowercased. A name that breaks the syntax rules is an error, since it
// could never be registered and is most likely a typo for one that can.
func NewRules(names ...string) (*Rules, error) {
	r := &Rules{extra: make(map[string]struct{}, len(names))}
	var errs []error
	for i, n := range names {
		key, err := normalizeExtra(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("reserved name %d %q: %w", i+1, n, err))
			continue
		}
		r.extra[key] = struct{}{}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// LoadRules reads extra reserved names from the file at path, one a line.
// Blank lines are skipped and '#' starts a comment that runs to the end of the
// line ('#' can never be part of a name, so a trailing comment is unambiguous).
// Surrounding whitespace and a UTF-8 byte order mark are ignored, since the
// file is written by hand. Every invalid entry is reported, each with its line
// number, so the operator fixes the file in one pass. An empty path means no
// extra names.
func LoadRules(path string) (*Rules, error) {
	if path == "" {
		return &Rules{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reserved names: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	r := &Rules{extra: make(map[string]struct{})}
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, err := normalizeExtra(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %q %w", path, i+1, line, err))
			continue
		}
		r.extra[key] = struct{}{}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// normalizeExtra is Normalize without the reservation check: listing a
// built-in name again in the file is harmless.
func normalizeExtra(name string) (string, error) {
	upper, err := checkSyntax(name)
	if err != nil {
		return "", err
	}
	if upper {
		name = lower(name)
	}
	return name, nil
}

// Normalize is the package-level Normalize with the extra reserved names of r
// refused as well.
func (r *Rules) Normalize(name string) (string, error) {
	upper, err := checkSyntax(name)
	if err != nil {
		return "", err
	}
	if upper {
		name = lower(name)
	}
	if r.IsReserved(name) {
		return "", errReservedMsg
	}
	return name, nil
}

// IsReserved reports whether name, ignoring ASCII case, is on the built-in
// list or among the extra names of r.
func (r *Rules) IsReserved(name string) bool {
	if IsReserved(name) {
		return true
	}
	if r == nil || len(r.extra) == 0 {
		return false
	}
	var buf [MaxLen]byte
	key, ok := foldKey(name, &buf)
	if !ok {
		return false
	}
	_, found := r.extra[string(key)]
	return found
}

// Len reports how many extra names r holds, so a program can log what it
// loaded.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.extra)
}

// With returns a copy of r with names added to its extra reserved names,
// each checked as NewRules checks them. r itself is not changed.
func (r *Rules) With(names ...string) (*Rules, error) {
	more, err := NewRules(names...)
	if err != nil {
		return nil, err
	}
	if r != nil {
		for n := range r.extra {
			more.extra[n] = struct{}{}
		}
	}
	return more, nil
}
