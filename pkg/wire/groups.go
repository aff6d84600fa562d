package wire

import (
	"fmt"
	"strings"
)

// MaxGroupName is the longest local group name, and the longest provider
// name and upstream name in a namespaced one: names travel in every access
// token, which must stay under 1 KiB.
const MaxGroupName = 32

// GroupSeparator separates a provider's name from its group's name in a
// namespaced group ("corp:eng"). Local names never contain it.
const GroupSeparator = ":"

// CheckGroupName returns an error saying why name is not a valid group name.
// A local group is 1 to MaxGroupName characters of a-z, 0-9, '-' and '_',
// starting with a letter or digit. A group that came from an upstream
// identity provider is namespaced as PROVIDER:NAME, each part following the
// same rule, so it can never be mistaken for (or shadow) a local group, and
// two providers' "admins" stay apart. Names are compared exactly: one
// spelling each.
func CheckGroupName(name string) error {
	provider, group, namespaced := strings.Cut(name, GroupSeparator)
	if !namespaced {
		return checkGroupPart("group name", name)
	}
	if err := checkGroupPart("provider name", provider); err != nil {
		return fmt.Errorf("group %q: %w", name, err)
	}
	if err := checkGroupPart("upstream group name", group); err != nil {
		return fmt.Errorf("group %q: %w", name, err)
	}
	return nil
}

// Namespaced reports whether a valid group name came from an upstream
// provider, and which.
func Namespaced(name string) (provider string, ok bool) {
	provider, _, ok = strings.Cut(name, GroupSeparator)
	return provider, ok
}

func checkGroupPart(what, s string) error {
	if s == "" || len(s) > MaxGroupName {
		return fmt.Errorf("%s must be 1 to %d characters", what, MaxGroupName)
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return fmt.Errorf("%s %q: use a-z, 0-9, '-' and '_', starting with a letter or digit", what, s)
		}
	}
	return nil
}
