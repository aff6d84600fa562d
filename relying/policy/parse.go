package policy

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// MaxFileSize bounds a policy file.
const MaxFileSize = 1 << 20

// Problem is one thing wrong with a policy file, at a line (0: the whole file).
type Problem struct {
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Msg
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
}

// Error is every problem found in a policy file, in file order.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	name := e.File
	if name == "" {
		name = "policy"
	}
	return fmt.Sprintf("%s: %d problem(s):\n  - %s", name, len(e.Problems), strings.Join(lines, "\n  - "))
}

var (
	topKeys   = []string{"issuer", "hosts"}
	entryKeys = []string{"host", "upstream", "owner_only", "require_groups", "require_amr", "max_auth_age",
		"public_paths", "forward_token", "issuer"}
)

// parser collects problems while it walks the document.
type parser struct{ problems []Problem }

func (ps *parser) add(line int, format string, args ...any) {
	ps.problems = append(ps.problems, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Parse reads a policy file. Every problem is reported in one *Error, each
// with its line; nothing is half-applied.
func Parse(file string, data []byte) (*Policy, error) {
	ps := &parser{}
	p := ps.parse(data)
	if len(ps.problems) > 0 {
		slices.SortStableFunc(ps.problems, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &Error{File: file, Problems: ps.problems}
	}
	return p, nil
}

func (ps *parser) parse(data []byte) *Policy {
	if len(data) > MaxFileSize {
		ps.add(0, "the file is %d bytes, over %d", len(data), MaxFileSize)
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// The library's message names the line ("yaml: line 3: ...").
		ps.add(0, "%v", err)
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		ps.add(0, "the file is empty: want issuer and hosts")
		return nil
	}
	root := doc.Content[0]
	fields := ps.mapping(root, "the file", topKeys)
	if fields == nil {
		return nil
	}
	p := &Policy{}
	if n := fields["issuer"]; n != nil {
		p.Issuer = ps.issuer(n)
	}
	hosts := fields["hosts"]
	if hosts == nil {
		ps.add(root.Line, "hosts is missing: list at least one host")
		return p
	}
	if hosts.Kind != yaml.SequenceNode || len(hosts.Content) == 0 {
		ps.add(hosts.Line, "hosts must be a list of at least one entry")
		return p
	}
	seen := map[string]int{}
	for _, n := range hosts.Content {
		h := ps.entry(n, p.Issuer, fields["issuer"] != nil)
		if h == nil {
			continue
		}
		key := h.Pattern.String()
		if first, dup := seen[key]; dup {
			ps.add(h.Line, "host %q is already defined at line %d", key, first)
			continue
		}
		seen[key] = h.Line
		p.Hosts = append(p.Hosts, h)
	}
	return p
}

// mapping checks that n is a mapping of known keys, each once, and returns
// its values by key; nil when n is not a mapping.
func (ps *parser) mapping(n *yaml.Node, what string, known []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		ps.add(n.Line, "%s must be a mapping of keys (%s)", what, strings.Join(known, ", "))
		return nil
	}
	out := map[string]*yaml.Node{}
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			ps.add(k.Line, "%s: a key must be a plain name", what)
		case !slices.Contains(known, k.Value):
			if near := nearKey(k.Value, known); near != "" {
				ps.add(k.Line, "unknown key %q in %s: did you mean %s?", k.Value, what, near)
				continue
			}
			ps.add(k.Line, "unknown key %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
		case lines[k.Value] != 0:
			ps.add(k.Line, "key %q is already set at line %d", k.Value, lines[k.Value])
		case v.Kind == yaml.AliasNode:
			ps.add(v.Line, "%s: YAML aliases are not supported; write the value out", k.Value)
		default:
			out[k.Value], lines[k.Value] = v, k.Line
		}
	}
	return out
}

// nearKey is the known key a typo most likely meant: another case, a
// hyphen for an underscore, or a plural s too many or too few; "" if none.
func nearKey(k string, known []string) string {
	norm := strings.ReplaceAll(strings.ToLower(k), "-", "_")
	for _, kn := range known {
		if norm == kn || norm+"s" == kn || norm == kn+"s" {
			return kn
		}
	}
	return ""
}

// entry parses one hosts entry; nil when its host is unusable.
func (ps *parser) entry(n *yaml.Node, issuer string, haveIssuer bool) *Host {
	if n.Kind == yaml.AliasNode {
		ps.add(n.Line, "hosts: YAML aliases are not supported; write the entry out")
		return nil
	}
	f := ps.mapping(n, "a hosts entry", entryKeys)
	if f == nil {
		return nil
	}
	h := &Host{Line: n.Line, Issuer: issuer}
	hostNode := f["host"]
	if hostNode == nil {
		ps.add(n.Line, "a hosts entry has no host")
		return nil
	}
	s, ok := ps.str(hostNode, "host")
	if !ok {
		return nil
	}
	pat, err := ParsePattern(s)
	if err != nil {
		ps.add(hostNode.Line, "%v", err)
		return nil
	}
	h.Pattern = pat
	if v := f["issuer"]; v != nil {
		h.Issuer = ps.issuer(v)
	} else if !haveIssuer {
		ps.add(n.Line, "host %q has no issuer: set issuer at the top of the file or in the entry", s)
	}
	if v := f["upstream"]; v != nil {
		if s, ok := ps.str(v, "upstream"); ok {
			u, err := ParseUpstream(s)
			if err != nil {
				ps.add(v.Line, "%v", err)
			}
			h.Upstream = u
		}
	}
	h.OwnerOnly = pat.PerUser // safe default: a user's page is theirs alone
	if v := f["owner_only"]; v != nil {
		if b, ok := ps.boolean(v, "owner_only"); ok {
			if b && !pat.PerUser {
				ps.add(v.Line, "owner_only: only a {username} host has an owner; %q has none", s)
			}
			h.OwnerOnly = b
		}
	}
	if v := f["require_groups"]; v != nil {
		h.RequireGroups = ps.list(v, "require_groups", func(g string) error { return wire.CheckGroupName(g) })
	}
	if v := f["require_amr"]; v != nil {
		h.RequireAMR = ps.list(v, "require_amr", func(m string) error {
			if !wire.ValidAMR(m) {
				return fmt.Errorf("%q: methods are %s", m, wire.AMRMethods())
			}
			return nil
		})
	}
	if v := f["max_auth_age"]; v != nil {
		if s, ok := ps.str(v, "max_auth_age"); ok {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				ps.add(v.Line, "max_auth_age %q is not a duration such as 12h or 30m", s)
			case d <= 0:
				ps.add(v.Line, "max_auth_age %q must be positive (leave it out for no limit)", s)
			}
			h.MaxAuthAge = d
		}
	}
	if v := f["public_paths"]; v != nil {
		h.PublicPaths = ps.list(v, "public_paths", checkPublicPath)
	}
	if v := f["forward_token"]; v != nil {
		if b, ok := ps.boolean(v, "forward_token"); ok {
			if b && f["upstream"] == nil {
				ps.add(v.Line, "forward_token needs an upstream: a forward-auth entry passes no token")
			}
			h.ForwardToken = b
		}
	}
	return h
}

func (ps *parser) str(n *yaml.Node, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" {
		ps.add(n.Line, "%s must be a string", key)
		return "", false
	}
	return n.Value, true
}

func (ps *parser) boolean(n *yaml.Node, key string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		ps.add(n.Line, "%s must be true or false, not %q", key, n.Value)
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		ps.add(n.Line, "%s: %v", key, err)
		return false, false
	}
	return b, true
}

// list reads a list of strings, each checked by check.
func (ps *parser) list(n *yaml.Node, key string, check func(string) error) []string {
	if n.Kind != yaml.SequenceNode {
		ps.add(n.Line, "%s must be a list, such as [a, b]", key)
		return nil
	}
	var out []string
	for _, item := range n.Content {
		s, ok := ps.str(item, key+" item")
		if !ok {
			continue
		}
		if err := check(s); err != nil {
			ps.add(item.Line, "%s: %v", key, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (ps *parser) issuer(n *yaml.Node) string {
	s, ok := ps.str(n, "issuer")
	if !ok {
		return ""
	}
	iss, err := ParseIssuer(s)
	if err != nil {
		ps.add(n.Line, "%v", err)
	}
	return iss
}

// ParseIssuer checks an issuer URL and returns its origin: https, or http
// under .localhost only, with no path.
func ParseIssuer(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "", fmt.Errorf("issuer %q is not an absolute http(s) URL", s)
	case u.Scheme == "http" && !strings.HasSuffix(strings.ToLower(u.Hostname()), ".localhost"):
		return "", fmt.Errorf("issuer %q: http is allowed only under .localhost; use https", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return "", fmt.Errorf("issuer %q must be a bare origin", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// ParseUpstream checks an upstream URL: absolute http(s), no user or fragment.
func ParseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, fmt.Errorf("upstream %q is not an absolute http(s) URL", s)
	case u.User != nil || u.Fragment != "":
		return nil, fmt.Errorf("upstream %q must not carry a user or a fragment", s)
	}
	return u, nil
}

// checkPublicPath accepts "/exact" and "/prefix/" paths, already clean:
// nothing a reader could decode or resolve differently from us.
func checkPublicPath(p string) error {
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must start with /", p)
	case p == "/":
		return errors.New(`"/" would make the whole host public: leave the entry's rules out instead`)
	case clean != p:
		return fmt.Errorf("%q is not a clean path (want %q)", p, clean)
	case strings.ContainsAny(p, "%?#*\\") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return fmt.Errorf("%q: a public path is plain text: no %%, ?, #, *, backslash, space or control character", p)
	}
	return nil
}
