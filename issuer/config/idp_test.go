package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseIDP(t *testing.T) {
	var l IDPs
	err := l.Set("name=corp,issuer=https://idp.example/,client-id=ID,client-secret-file=/s,display=Corp SSO," +
		"scopes=openid+email,groups-claim=groups,map-groups=eng:staff+ops:staff,allowed-email-domains=Corp.Example," +
		"allowed-groups=eng+ops,link-verified-email=true,signup=open,trust-amr=true,max-session=24h;" +
		"name=dex,issuer=http://127.0.0.1:5556/dex,client-id=x,client-secret-file=/t")
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 {
		t.Fatalf("%d providers, want 2", len(l))
	}
	p := l[0]
	if p.Name != "corp" || p.Issuer != "https://idp.example" || p.ClientID != "ID" || p.ClientSecretFile != "/s" ||
		p.Label() != "Corp SSO" || strings.Join(p.Scopes, " ") != "openid email" || p.GroupsClaim != "groups" ||
		p.MapGroups["eng"] != "staff" || p.MapGroups["ops"] != "staff" || p.AllowedDomains[0] != "corp.example" ||
		len(p.AllowedGroups) != 2 || !p.LinkVerifiedEmail || p.Signup != "open" || !p.TrustAMR || p.MaxSession != 24*time.Hour {
		t.Fatalf("parsed %+v", p)
	}
	if d := l[1]; strings.Join(d.Scopes, " ") != "openid email profile" || d.Signup != "closed" || d.Label() != "dex" {
		t.Fatalf("defaults %+v", d)
	}
	c := Default()
	c.IDPs = l
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseIDPErrors(t *testing.T) {
	tests := []struct{ entry, want string }{
		{"name=corp,colour=blue", `unknown key "colour"`},
		{"name=corp,client-secret=hunter2hunter2", `unknown key "client-secret"`},
		{"name=corp,issuer", "not key=value"},
		{"name=corp,name=dup", "given twice"},
		{"name=corp,trust-amr=yes", "trust-amr must be true or false"},
		{"name=corp,max-session=forever", "max-session"},
		{"name=corp,map-groups=eng", "PROVIDER_GROUP:LOCAL_GROUP"},
	}
	for _, tt := range tests {
		var l IDPs
		if err := l.Set(tt.entry); err != nil {
			t.Fatalf("Set(%q) = %v: Set never fails, Validate reports", tt.entry, err)
		}
		err := l.Err()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%q) = %v, want %q", tt.entry, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Set(%q) error repeats the secret: %v", tt.entry, err)
		}
	}
}

func TestValidateIDPs(t *testing.T) {
	good := "name=corp,issuer=https://idp.example,client-id=ID,client-secret-file=/s"
	tests := []struct {
		name  string
		flags []string
		pwd   string
		want  []string
	}{
		{"http issuer off localhost", []string{"name=corp,issuer=http://idp.example,client-id=ID,client-secret-file=/s"}, "on", []string{"must use https"}},
		{"missing keys", []string{"name=corp,issuer=https://idp.example"}, "on", []string{"client-id= is missing", "client-secret-file= is missing"}},
		{"bad name", []string{"name=Corp SSO,issuer=https://idp.example,client-id=ID,client-secret-file=/s"}, "on", []string{"--idp name"}},
		{"twice", []string{good, good}, "on", []string{"configured twice"}},
		{"local group mapped to namespaced", []string{good + ",groups-claim=groups,map-groups=eng:corp:admins"}, "on", []string{"map-groups"}},
		{"allowed groups need a claim", []string{good + ",allowed-groups=eng"}, "on", []string{"needs groups-claim"}},
		{"signup value", []string{good + ",signup=maybe"}, "on", []string{"signup must be open or closed"}},
		{"no openid scope", []string{good + ",scopes=email"}, "on", []string{"must include openid"}},
		{"password off without idp", nil, "off", []string{"needs at least one --idp"}},
		{"password login value", []string{good}, "sometimes", []string{"--password-login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.PasswordLogin = tt.pwd
			for _, f := range tt.flags {
				if err := c.IDPs.Set(f); err != nil {
					t.Fatal(err)
				}
			}
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestLoadSecrets: the secret is read from its file, and no error about a
// bad file ever contains a byte of what the file holds.
func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	const secret = "s3cr3t-Value-that-must-not-leak"
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", secret+"\n")
	twoLines := write("two", secret+"\n"+secret+"\n")
	empty := write("empty", "\n")
	c := Default()
	for _, f := range []string{good, twoLines, empty, filepath.Join(dir, "missing")} {
		if err := c.IDPs.Set("name=p" + filepath.Base(f) + ",issuer=https://idp.example,client-id=ID,client-secret-file=" + f); err != nil {
			t.Fatal(err)
		}
	}
	err := c.LoadSecrets()
	if err == nil {
		t.Fatal("LoadSecrets accepted bad files")
	}
	for _, w := range []string{"one line", "is empty", "no such file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("the error shows the secret: %v", err)
	}
	if c.IDPs[0].ClientSecret != secret {
		t.Fatalf("secret %q not read", c.IDPs[0].ClientSecret)
	}
	if strings.Contains(c.IDPs[0].String(), secret) || strings.Contains(c.IDPs.String(), secret) {
		t.Fatal("String shows the secret")
	}
}
