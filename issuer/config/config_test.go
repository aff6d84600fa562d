package config

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*Config)
		wantErrs   []string // substrings, each must appear; none means valid
		wantDomain string
	}{
		{name: "defaults", mutate: func(*Config) {}, wantDomain: "domain.localhost"},
		{name: "https apex", mutate: func(c *Config) { c.URL = "https://example.com" }, wantDomain: "example.com"},
		{name: "auth subdomain with parent cookie domain", mutate: func(c *Config) {
			c.URL, c.CookieDomain = "https://auth.example.com", "example.com"
		}, wantDomain: "example.com"},
		{name: "http outside localhost", mutate: func(c *Config) { c.URL = "http://example.com" }, wantErrs: []string{"http is allowed only"}},
		{name: "bare localhost", mutate: func(c *Config) { c.URL = "http://localhost:8080" }, wantErrs: []string{"http is allowed only", "single-label"}},
		{name: "cookie domain not a parent", mutate: func(c *Config) {
			c.URL, c.CookieDomain = "https://auth.example.com", "other.com"
		}, wantErrs: []string{"must be the host of --url"}},
		{name: "cookie domain on a label boundary", mutate: func(c *Config) {
			c.URL, c.CookieDomain = "https://authexample.com", "example.com"
		}, wantErrs: []string{"must be the host of --url"}},
		{name: "public suffix", mutate: func(c *Config) {
			c.URL, c.CookieDomain = "https://example.co.uk", "co.uk"
		}, wantErrs: []string{"public suffix"}},
		{name: "private public suffix", mutate: func(c *Config) {
			c.URL, c.CookieDomain = "https://me.github.io", "github.io"
		}, wantErrs: []string{"public suffix"}},
		{name: "URL with path", mutate: func(c *Config) { c.URL = "https://example.com/sso" }, wantErrs: []string{"bare origin"}},
		{name: "IP address", mutate: func(c *Config) { c.URL = "https://127.0.0.1" }, wantErrs: []string{"not an IP address"}},
		{name: "event retention too short", mutate: func(c *Config) { c.EventRetention = time.Hour }, wantErrs: []string{"--event-retention"}},
		{name: "events kept forever", mutate: func(c *Config) { c.EventRetention = 0 }, wantDomain: "domain.localhost"},
		{name: "every problem at once", mutate: func(c *Config) {
			c.Alg, c.AccessTTL, c.Registration, c.TrustedProxies = "HS256", 2*time.Hour, "maybe", "10.0.0.0/33"
		}, wantErrs: []string{"--alg", "--access-ttl", "--registration", "--trusted-proxies"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c.CookieDomain != tt.wantDomain {
					t.Fatalf("cookie domain %q, want %q", c.CookieDomain, tt.wantDomain)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted a broken config")
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestCookieNames(t *testing.T) {
	dev := Default()
	prod := Default()
	prod.URL = "https://example.com"
	if got := dev.Cookies(); got != (CookieNames{"canopy", "canopy-refresh", "canopy-csrf", "canopy-device"}) {
		t.Errorf("dev names %+v", got)
	}
	if got := prod.Cookies(); got != (CookieNames{"__Secure-canopy", "__Host-canopy-refresh", "__Host-canopy-csrf", "__Host-canopy-device"}) {
		t.Errorf("https names %+v", got)
	}
}

func TestHostLabel(t *testing.T) {
	tests := []struct{ url, domain, want string }{
		{"http://domain.localhost:8080", "", ""},
		{"https://example.com", "", ""},
		{"https://idp.example.com", "", ""}, // its own cookie domain
		{"https://idp.example.com", "example.com", "idp"},
		{"https://IDP.Example.com", "example.com", "idp"},
		{"https://auth.eu.example.com", "example.com", "eu"},
		{"http://auth.domain.localhost:8080", "domain.localhost", "auth"},
	}
	for _, tt := range tests {
		c := Default()
		c.URL, c.CookieDomain = tt.url, tt.domain
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		if got := c.HostLabel(); got != tt.want {
			t.Errorf("HostLabel of %s under %q = %q, want %q", tt.url, tt.domain, got, tt.want)
		}
	}
}

// TestUserPageURL: --user-page-url is checked with the rest, and UserPage
// fills it in; without it the link keeps make run's default.
func TestUserPageURL(t *testing.T) {
	for _, tc := range []struct {
		url, page, want string // want: an error substring, or "" for valid
		issuer          string
	}{
		{"", "http://alice.domain.localhost:8081", "", "http://domain.localhost:8080"},
		{"", "https://alice.example.com", "", "https://example.com"},
		{"http://{username}.domain.localhost:8081", "http://alice.domain.localhost:8081", "", "http://domain.localhost:8080"},
		{"https://{username}.example.com:8443/", "https://alice.example.com:8443", "", "https://example.com"},
		{"https://{username}.pages.example.com", "https://alice.pages.example.com", "", "https://example.com"},
		{"http://{username}.example.com", "", "http is allowed only", "https://example.com"},
		{"https://{username}.other.com", "", "under the cookie domain example.com", "https://example.com"},
		{"https://{username}.example.com/home", "", "no user, path", "https://example.com"},
		{"https://www.example.com/{username}", "", "first label", "https://example.com"},
		{"https://{username}.{username}.example.com", "", "first label", "https://example.com"},
		{"ftp://{username}.example.com", "", "http(s) URL", "https://example.com"},
		{"https://{username}.example.com?x=1", "", "no user, path, query", "https://example.com"},
		{"https://{username}.example.com@evil.com", "", "no user", "https://example.com"},
	} {
		c := Default()
		c.URL, c.UserPageURL = tc.issuer, tc.url
		err := c.Validate()
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), "--user-page-url") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: error %v, want %q", tc.url, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.url, err)
			continue
		}
		if got := c.UserPage("alice"); got != tc.page {
			t.Errorf("%q: UserPage = %q, want %q", tc.url, got, tc.page)
		}
	}
}

func TestSeveralDomains(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantErrs    []string
		wantDomains []Domain
	}{
		{name: "two localhost domains", args: []string{"--url", "http://domain.localhost:8080", "--url", "http://other.localhost:8080"},
			wantDomains: []Domain{{"http://domain.localhost:8080", "domain.localhost", true}, {"http://other.localhost:8080", "other.localhost", false}}},
		{name: "comma list as in the environment", args: []string{"--url", "https://auth.domain.com,https://other.org"},
			wantDomains: []Domain{{"https://auth.domain.com", "auth.domain.com", true}, {"https://other.org", "other.org", false}}},
		{name: "cookie domains in order", args: []string{"--url", "https://auth.domain.com", "--url", "https://sso.other.org",
			"--cookie-domain", "domain.com", "--cookie-domain", "other.org"},
			wantDomains: []Domain{{"https://auth.domain.com", "domain.com", true}, {"https://sso.other.org", "other.org", false}}},
		{name: "a missing cookie domain is the host", args: []string{"--url", "https://auth.domain.com,https://other.org,https://third.net",
			"--cookie-domain", "domain.com,,third.net"},
			wantDomains: []Domain{{"https://auth.domain.com", "domain.com", true}, {"https://other.org", "other.org", false}, {"https://third.net", "third.net", false}}},
		{name: "mixed schemes", args: []string{"--url", "https://domain.com", "--url", "http://other.localhost"},
			wantErrs: []string{"first one's scheme"}},
		{name: "same host twice", args: []string{"--url", "https://domain.com", "--url", "https://domain.com:8443"},
			wantErrs: []string{"its host is another --url's too"}},
		{name: "nested cookie domains", args: []string{"--url", "https://domain.com", "--url", "https://eu.domain.com"},
			wantErrs: []string{"overlaps the cookie domain"}},
		{name: "second cookie domain not a parent", args: []string{"--url", "https://domain.com", "--url", "https://sso.other.org",
			"--cookie-domain", "domain.com,third.net"}, wantErrs: []string{"must be the host of --url"}},
		{name: "too many cookie domains", args: []string{"--url", "https://domain.com", "--url", "https://other.org",
			"--cookie-domain", "domain.com,other.org,third.net"}, wantErrs: []string{"given 3 times for 2 --url"}},
		{name: "second URL with a path", args: []string{"--url", "https://domain.com", "--url", "https://other.org/sso"},
			wantErrs: []string{"bare origin"}},
		{name: "second URL a public suffix", args: []string{"--url", "https://domain.com", "--url", "https://co.uk"},
			wantErrs: []string{"public suffix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.Var(c.URLFlag(), "url", "")
			fs.Var(c.CookieDomainFlag(), "cookie-domain", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if got := c.Domains(); !reflect.DeepEqual(got, tt.wantDomains) {
					t.Fatalf("Domains() = %+v, want %+v", got, tt.wantDomains)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %v", tt.args)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestURLFlagEmpty(t *testing.T) {
	c := Default()
	if err := c.URLFlag().Set("https://domain.com,,https://other.org"); err == nil {
		t.Fatal("an empty URL in a comma list was accepted")
	}
}
