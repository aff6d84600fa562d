package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// IDP is one upstream OpenID provider people sign in with (--idp). Lists in
// the flag (scopes, map-groups, allowed-*) are joined with '+'.
type IDP struct {
	Name             string // in paths (/login/upstream/NAME), claims ("idp") and group namespaces
	Issuer           string // the provider's issuer URL; its discovery lives under it
	ClientID         string
	ClientSecretFile string
	// ClientSecret is read from ClientSecretFile by LoadSecrets. It never
	// appears in a flag, a log or an error.
	ClientSecret      string
	Display           string            // the button's label; Name when empty
	Scopes            []string          // openid email profile by default
	GroupsClaim       string            // the id_token or userinfo claim listing groups; none read when empty
	MapGroups         map[string]string // provider group → local group
	AllowedDomains    []string          // only people whose verified email is in one of these domains
	AllowedGroups     []string          // only members of one of these provider groups
	LinkVerifiedEmail bool              // a verified email links to the user another provider verified it for
	Signup            string            // open or closed
	TrustAMR          bool              // take the provider's amr values Canopy knows
	MaxSession        time.Duration     // 0: the session's own lifetime
	// Err is why the entry did not parse; Validate reports it. Set keeps
	// it here rather than failing, because the flag package and envflag
	// quote a refused value in their errors, and an entry may hold a
	// secret pasted into the wrong key.
	Err error
}

// Label is what the sign-in button says.
func (p IDP) Label() string {
	if p.Display != "" {
		return p.Display
	}
	return p.Name
}

// String describes p without its secret, for logs and errors.
func (p IDP) String() string { return fmt.Sprintf("idp %q (%s)", p.Name, p.Issuer) }

// MaxIDPName is the longest provider name: it travels in the "idp" claim
// of every access token of its sessions, which must stay under 1 KiB.
const MaxIDPName = 16

// IDPs is the repeatable --idp flag: each value is one provider, or several
// separated by ';' (CANOPY_ISSUER_IDP holds them all in one variable).
// Set only parses; Validate checks what each provider means.
type IDPs []IDP

func (l *IDPs) String() string {
	if l == nil {
		return ""
	}
	names := make([]string, len(*l))
	for i, p := range *l {
		names[i] = p.Name
	}
	return strings.Join(names, ";")
}

// Set adds the providers of one --idp value. It never fails: an entry that
// does not parse carries its error (IDP.Err), which names the key and never
// repeats a value, to Validate.
func (l *IDPs) Set(v string) error {
	for entry := range strings.SplitSeq(v, ";") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		p, err := ParseIDP(entry)
		p.Err = err
		*l = append(*l, p)
	}
	return nil
}

// Err is the first entry's parse error, if any.
func (l IDPs) Err() error {
	for _, p := range l {
		if p.Err != nil {
			return p.Err
		}
	}
	return nil
}

// idpKeys are the keys an --idp entry may have.
var idpKeys = []string{"name", "issuer", "client-id", "client-secret-file", "display", "scopes", "groups-claim",
	"map-groups", "allowed-email-domains", "allowed-groups", "link-verified-email", "signup", "trust-amr", "max-session"}

// ParseIDP parses one entry: comma-separated key=value pairs. A bare word
// without '=' is a provider name (`issuer user link NAME --idp corp`).
func ParseIDP(entry string) (IDP, error) {
	p := IDP{Scopes: []string{"openid", "email", "profile"}, Signup: "closed"}
	entry = strings.TrimSpace(entry)
	if !strings.Contains(entry, "=") {
		p.Name = entry
		return p, nil
	}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(entry, ",") {
		key, val, ok := strings.Cut(pair, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return p, fmt.Errorf("--idp: %q is not key=value", truncateWord(key))
		}
		if !slices.Contains(idpKeys, key) {
			return p, fmt.Errorf("--idp: unknown key %q (keys: %s)", truncateWord(key), strings.Join(idpKeys, ", "))
		}
		if seen[key] {
			return p, fmt.Errorf("--idp: key %q given twice", key)
		}
		seen[key] = true
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "name":
			p.Name = val
		case "issuer":
			p.Issuer = strings.TrimSuffix(val, "/")
		case "client-id":
			p.ClientID = val
		case "client-secret-file":
			p.ClientSecretFile = val
		case "display":
			p.Display = val
		case "scopes":
			p.Scopes = plusList(val)
		case "groups-claim":
			p.GroupsClaim = val
		case "map-groups":
			p.MapGroups = map[string]string{}
			for _, m := range plusList(val) {
				from, to, ok := strings.Cut(m, ":")
				if !ok || from == "" || to == "" {
					return p, fmt.Errorf("--idp: map-groups %q: each mapping is PROVIDER_GROUP:LOCAL_GROUP", truncateWord(m))
				}
				p.MapGroups[from] = to
			}
		case "allowed-email-domains":
			p.AllowedDomains = plusList(strings.ToLower(val))
		case "allowed-groups":
			p.AllowedGroups = plusList(val)
		case "link-verified-email":
			p.LinkVerifiedEmail, err = parseBool(key, val)
		case "trust-amr":
			p.TrustAMR, err = parseBool(key, val)
		case "signup":
			p.Signup = val
		case "max-session":
			p.MaxSession, err = time.ParseDuration(val)
			if err != nil {
				err = fmt.Errorf("--idp: max-session %q is not a duration such as 24h", truncateWord(val))
			}
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

func plusList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, "+") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseBool(key, v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("--idp: %s must be true or false", key)
}

// truncateWord keeps an echoed word short.
func truncateWord(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// validateIDPs appends a problem for every provider that cannot work.
func (c *Config) validateIDPs(add func(string, ...any)) {
	names := map[string]bool{}
	for _, p := range c.IDPs {
		if p.Err != nil {
			add("%v", p.Err)
			continue
		}
		what := fmt.Sprintf("--idp %q", p.Name)
		if err := wire.CheckGroupName(p.Name); err != nil || strings.Contains(p.Name, wire.GroupSeparator) || len(p.Name) > MaxIDPName {
			add("--idp name %q: a name of a-z, 0-9, '-' and '_' (at most %d), used in paths, group names and every token", truncateWord(p.Name), MaxIDPName)
		}
		if names[p.Name] {
			add("%s is configured twice", what)
		}
		names[p.Name] = true
		if p.Issuer == "" && p.ClientID == "" && p.ClientSecretFile == "" {
			add("%s: give issuer=, client-id= and client-secret-file=", what)
			continue
		}
		if msg := checkIDPIssuer(p.Issuer); msg != "" {
			add("%s: %s", what, msg)
		}
		if p.ClientID == "" {
			add("%s: client-id= is missing", what)
		}
		if p.ClientSecretFile == "" {
			add("%s: client-secret-file= is missing (the secret is never given on the command line)", what)
		}
		if !slices.Contains(p.Scopes, "openid") {
			add("%s: scopes must include openid", what)
		}
		if p.Signup != "open" && p.Signup != "closed" {
			add("%s: signup must be open or closed", what)
		}
		if p.MaxSession < 0 || (p.MaxSession > 0 && p.MaxSession < c.AccessTTL) {
			add("%s: max-session %s must be at least --access-ttl (%s)", what, p.MaxSession, c.AccessTTL)
		}
		for from, to := range p.MapGroups {
			if err := wire.CheckGroupName(to); err != nil || strings.Contains(to, wire.GroupSeparator) {
				add("%s: map-groups %q → %q: the local group must be a local group name", what, truncateWord(from), truncateWord(to))
			}
		}
		for _, d := range p.AllowedDomains {
			if !strings.Contains(d, ".") || strings.ContainsAny(d, "@/ ") {
				add("%s: allowed-email-domains %q is not a domain", what, truncateWord(d))
			}
		}
		if len(p.AllowedGroups) > 0 && p.GroupsClaim == "" {
			add("%s: allowed-groups needs groups-claim=", what)
		}
		if len(p.MapGroups) > 0 && p.GroupsClaim == "" {
			add("%s: map-groups needs groups-claim=", what)
		}
	}
	if c.PasswordLogin != "on" && c.PasswordLogin != "off" {
		add("--password-login %q: must be on or off", c.PasswordLogin)
	} else if c.PasswordLogin == "off" && len(c.IDPs) == 0 {
		add("--password-login off needs at least one --idp: nobody could sign in")
	}
}

// checkIDPIssuer: https, or http on a loopback or .localhost host for
// development and tests.
func checkIDPIssuer(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("issuer %q is not an absolute URL such as https://accounts.google.com", truncateWord(raw))
	}
	host := strings.ToLower(u.Hostname())
	local := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		local = true
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && local:
	default:
		return fmt.Sprintf("issuer %q must use https (http only on localhost for development)", truncateWord(raw))
	}
	return ""
}

// LoadSecrets reads each provider's client-secret-file (serve calls it at
// start). Errors name the provider and the file, never a byte of its content.
func (c *Config) LoadSecrets() error {
	var problems []string
	for i := range c.IDPs {
		p := &c.IDPs[i]
		if p.ClientSecretFile == "" || p.Err != nil {
			continue
		}
		b, err := os.ReadFile(p.ClientSecretFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is named below once
			}
			problems = append(problems, fmt.Sprintf("--idp %q: client-secret-file %s: %v", p.Name, p.ClientSecretFile, err))
			continue
		}
		secret := strings.TrimSpace(string(b))
		switch {
		case secret == "":
			problems = append(problems, fmt.Sprintf("--idp %q: client-secret-file %s is empty", p.Name, p.ClientSecretFile))
		case strings.ContainsAny(secret, "\r\n\x00"):
			problems = append(problems, fmt.Sprintf("--idp %q: client-secret-file %s must hold the secret on one line", p.Name, p.ClientSecretFile))
		default:
			p.ClientSecret = secret
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
}

// IDP returns the configured provider called name.
func (c *Config) IDP(name string) (IDP, bool) {
	for _, p := range c.IDPs {
		if p.Name == name {
			return p, true
		}
	}
	return IDP{}, false
}
