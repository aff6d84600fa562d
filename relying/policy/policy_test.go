package policy_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/relying/policy"
)

// TestBadPolicies refuses every file of testdata/bad with the errors
// testdata/bad_policies.json lists for it, all at once.
func TestBadPolicies(t *testing.T) {
	raw, err := os.ReadFile("testdata/bad_policies.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Files []struct {
			File string   `json:"file"`
			Want []string `json:"want"`
		} `json:"files"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir("testdata/bad")
	if len(entries) != len(table.Files) {
		t.Errorf("testdata/bad holds %d files, the table lists %d", len(entries), len(table.Files))
	}
	for _, row := range table.Files {
		t.Run(row.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/bad", row.File))
			if err != nil {
				t.Fatal(err)
			}
			p, err := policy.Parse(row.File, data)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *policy.Error: %v", err, err)
			}
			for _, want := range row.Want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestGoodPolicy(t *testing.T) {
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("good.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 5 {
		t.Fatalf("%d hosts", len(p.Hosts))
	}
	g := p.Hosts[1]
	if g.Line != 6 || g.Upstream.String() != "http://127.0.0.1:3000" || g.MaxAuthAge != 12*time.Hour ||
		strings.Join(g.RequireGroups, ",") != "staff" || strings.Join(g.RequireAMR, ",") != "otp" || g.ForwardToken || g.Rule() == nil {
		t.Errorf("grafana entry: %+v", g)
	}
	if !p.Hosts[0].OwnerOnly || p.Hosts[4].OwnerOnly || p.Hosts[2].Upstream != nil || p.Hosts[2].Rule() != nil {
		t.Errorf("owner_only or forward-auth entry wrong: %+v %+v %+v", p.Hosts[0], p.Hosts[2], p.Hosts[4])
	}
	if p.Hosts[3].Issuer != "https://other.org" || p.Hosts[0].Issuer != "https://domain.com" || !p.Hosts[3].ForwardToken {
		t.Errorf("issuers: %q %q", p.Hosts[3].Issuer, p.Hosts[0].Issuer)
	}
	if got := strings.Join(p.Issuers(), " "); got != "https://domain.com https://other.org" {
		t.Errorf("Issuers() = %q", got)
	}
}

// TestMatch: exact beats {username}, which beats a wildcard.
func TestMatch(t *testing.T) {
	p, err := policy.Parse("m.yaml", []byte(`issuer: https://domain.com
hosts:
  - host: "*.domain.com"
  - host: "{username}.domain.com"
  - host: admin.domain.com
  - host: "*.tools.domain.com"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, want, label string
	}{
		{"admin.domain.com", "admin.domain.com", ""},
		{"ADMIN.domain.com:8443", "admin.domain.com", ""},
		{"alice.domain.com", "{username}.domain.com", "alice"},
		{"alice.domain.com:8081", "{username}.domain.com", "alice"},
		{"grafana.tools.domain.com", "*.tools.domain.com", ""},
		{"a.b.tools.domain.com", "", ""},
		{"domain.com", "", ""},
		{"tools.domain.com", "{username}.domain.com", "tools"},
		{"evil.com", "", ""},
		{"alice.domain.com.evil.com", "", ""},
		{"", "", ""},
	} {
		h, label, ok := p.Match(tc.host)
		got := ""
		if ok {
			got = h.Pattern.String()
		}
		if got != tc.want || label != tc.label {
			t.Errorf("Match(%q) = %q, %q; want %q, %q", tc.host, got, label, tc.want, tc.label)
		}
	}
}

// TestPublic matches public paths on the cleaned path.
func TestPublic(t *testing.T) {
	h := &policy.Host{PublicPaths: []string{"/healthz", "/public/"}}
	for path, want := range map[string]bool{
		"/healthz": true, "/healthz/": false, "/healthzz": false, "/healthz/x": false,
		"/public/": true, "/public/a/b.css": true, "/public": false,
		"/public/../admin": false, "/public/./../admin/": false, "//public/x": true,
		"/public/x/../../admin": false, "/public/x/../y": true, "/admin": false, "": false, "public/x": false,
		"/./healthz": true,
	} {
		if got := h.Public(path); got != want {
			t.Errorf("Public(%q) = %v, want %v", path, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/good.yaml", "testdata/bad/bad_values.yaml", "testdata/bad/aliases.yaml"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse("fuzz", data)
		if (p == nil) == (err == nil) {
			t.Fatalf("policy %v with error %v", p, err)
		}
	})
}
