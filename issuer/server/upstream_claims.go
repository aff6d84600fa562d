package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// upstreamID is what a verified id_token (and the userinfo answer) says
// about the person.
type upstreamID struct {
	Issuer, Subject   string
	Email             string // lowercase; "" when none was sent
	EmailVerified     bool
	PreferredUsername string
	AMR               []string
	AuthTime          time.Time // zero when the provider sent none
	Groups            []string  // as the provider names them
	haveGroups        bool
}

// upstreamClaims are the claims read from an id_token or a userinfo answer.
type upstreamClaims struct {
	Email             string          `json:"email"`
	EmailVerified     json.RawMessage `json:"email_verified"` // a boolean, or "true" from some providers
	PreferredUsername string          `json:"preferred_username"`
	AMR               json.RawMessage `json:"amr"`
	AuthTime          json.RawMessage `json:"auth_time"`
}

// maxSubject bounds the stored subject (OpenID Connect: at most 255 ASCII characters).
const maxSubject = 255

func (s *Server) readClaims(u *upstream, idt *oidc.IDToken) (*upstreamID, error) {
	if idt.Subject == "" || len(idt.Subject) > maxSubject || !printableASCII(idt.Subject) {
		return nil, errors.New("id_token: sub is empty, too long or not printable ASCII")
	}
	var cl upstreamClaims
	if err := idt.Claims(&cl); err != nil {
		return nil, fmt.Errorf("id_token claims: %w", err)
	}
	id := &upstreamID{Issuer: idt.Issuer, Subject: idt.Subject}
	id.fill(cl)
	var amr []string
	if len(cl.AMR) > 0 && json.Unmarshal(cl.AMR, &amr) == nil {
		id.AMR = amr
	}
	var at int64
	if len(cl.AuthTime) > 0 && json.Unmarshal(cl.AuthTime, &at) == nil && at > 0 {
		id.AuthTime = time.Unix(at, 0)
	}
	if u.cfg.GroupsClaim != "" {
		var all map[string]json.RawMessage
		if err := idt.Claims(&all); err == nil {
			id.Groups, id.haveGroups = readGroups(all[u.cfg.GroupsClaim])
		}
	}
	return id, nil
}

// fill takes the profile claims of cl where id has none yet.
func (id *upstreamID) fill(cl upstreamClaims) {
	if id.Email == "" && cl.Email != "" && len(cl.Email) <= 254 && printableASCII(cl.Email) {
		id.Email = strings.ToLower(cl.Email)
		id.EmailVerified = string(cl.EmailVerified) == "true" || string(cl.EmailVerified) == `"true"`
	}
	if id.PreferredUsername == "" && len(cl.PreferredUsername) <= 256 {
		id.PreferredUsername = cl.PreferredUsername
	}
}

// needUserInfo: the id_token lacks what the configuration needs (many
// providers put the profile only in userinfo).
func (id *upstreamID) needUserInfo(p config.IDP) bool {
	return id.Email == "" || id.PreferredUsername == "" || (p.GroupsClaim != "" && !id.haveGroups)
}

// merge adds the userinfo answer's claims that the id_token lacked.
func (id *upstreamID) merge(p config.IDP, info *oidc.UserInfo) error {
	var cl upstreamClaims
	if err := info.Claims(&cl); err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	id.fill(cl)
	if p.GroupsClaim != "" && !id.haveGroups {
		var all map[string]json.RawMessage
		if err := info.Claims(&all); err == nil {
			id.Groups, id.haveGroups = readGroups(all[p.GroupsClaim])
		}
	}
	return nil
}

// maxUpstreamGroups bounds how many group names of a provider are read at all.
const maxUpstreamGroups = 2000

// readGroups reads a list of strings, or one string.
func readGroups(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		if len(list) > maxUpstreamGroups {
			list = list[:maxUpstreamGroups]
		}
		return list, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	return nil, false
}

func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// maxUpstreamGroupBytes bounds the provider groups a session records; a
// token carries those that fit beside the user's local groups (mergeGroups).
const maxUpstreamGroupBytes = maxTokenGroupBytes

// admit reports why the provider's person may not sign in here, or "".
func admit(p config.IDP, id *upstreamID) string {
	if len(p.AllowedDomains) > 0 {
		_, domain, _ := strings.Cut(id.Email, "@")
		if !id.EmailVerified || !slices.Contains(p.AllowedDomains, domain) {
			return "Your " + p.Label() + " account has no verified email address in a domain this site admits."
		}
	}
	if len(p.AllowedGroups) > 0 && !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(p.AllowedGroups, g) }) {
		return "Your " + p.Label() + " account is in none of the groups this site admits."
	}
	return ""
}

// carriedGroups are the groups a session from p carries: a mapped group
// under its local name; any other group (only those of allowed-groups,
// when set) namespaced as NAME:GROUP, so a provider naming "admins" gives
// "corp:admins", never the local "admins". Names that are not valid group
// names are left out, and so is whatever exceeds the token's budget for
// them (in sorted order, so the same groups always win); dropped counts them.
func carriedGroups(p config.IDP, groups []string) (carried []string, dropped int) {
	seen := map[string]bool{}
	size := 0
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	for _, g := range slices.Compact(sorted) {
		name := ""
		if local, ok := p.MapGroups[g]; ok {
			name = local
		} else if len(p.AllowedGroups) == 0 || slices.Contains(p.AllowedGroups, g) {
			name = p.Name + wire.GroupSeparator + g
			if wire.CheckGroupName(name) != nil {
				dropped++
				continue
			}
		} else {
			continue
		}
		if seen[name] {
			continue
		}
		if size+len(name)+3 > maxUpstreamGroupBytes {
			dropped++
			continue
		}
		seen[name] = true
		size += len(name) + 3
		carried = append(carried, name)
	}
	slices.Sort(carried)
	return carried, dropped
}

// sessionAMR is the amr of a federated session: "fed", plus, when the
// provider is trusted for them, at most two of its methods that Canopy
// knows, the strongest first (the token's size budget has room for three).
func sessionAMR(p config.IDP, id *upstreamID) []string {
	amr := []string{wire.AMRFederated}
	if !p.TrustAMR {
		return amr
	}
	for _, m := range []string{wire.AMRMultiFactor, wire.AMRHardware, wire.AMROTP, wire.AMRPassword} {
		if slices.Contains(id.AMR, m) && len(amr) < 3 {
			amr = append(amr, m)
		}
	}
	return amr
}

// authTime is the provider's auth_time when it sent one that is not in
// the future, else now: so --max-auth-age counts from the sign-in at the
// provider, which a federated session cannot make look younger.
func authTime(id *upstreamID, now time.Time) time.Time {
	if id.AuthTime.IsZero() || id.AuthTime.After(now) {
		return now
	}
	return id.AuthTime.Truncate(time.Second)
}
