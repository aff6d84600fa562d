// Package envflag parses command-line flags that may stand before or after
// positional arguments, falling back to PREFIX_FLAG_NAME environment variables.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// EnvName is the environment variable for a flag: prefix + upper snake case
// ("CANOPY_ISSUER_" + "access-ttl" → "CANOPY_ISSUER_ACCESS_TTL").
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, allowing flags after positional arguments, and
// returns the positional arguments. After the command line, every flag not set
// on it takes its value from the environment (lookup, usually os.LookupEnv):
// flags win over the environment. An argument "--" ends flag parsing.
// A bad environment value is an error naming the variable.
// flag.ErrHelp is returned as is for -h/--help. On an error, the positional
// arguments seen so far are returned too, so that help can name the subcommand.
func Parse(fs *flag.FlagSet, args []string, prefix string, lookup func(string) (string, bool)) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return positional, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// fs.Parse stops at the first non-flag, or consumes "--" and stops.
		if consumedDashDash(args, rest) {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || lookup == nil {
			return
		}
		name := EnvName(prefix, f.Name)
		if v, ok := lookup(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %v", name, v, err))
			}
		}
	})
	return positional, errors.Join(errs...)
}

// consumedDashDash reports whether the parse that left rest stopped at "--".
func consumedDashDash(args, rest []string) bool {
	i := len(args) - len(rest) - 1
	return i >= 0 && args[i] == "--"
}
