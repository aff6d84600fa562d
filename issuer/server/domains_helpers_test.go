package server

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/canopy-sso/canopy/issuer/config"
)

// The several-domains harness: the primary on domain.localhost and two more
// root domains, other.localhost and third.localhost, all on the one
// listener; the request's Host picks the domain.

// domainsOptions are options whose config adds other.localhost and
// third.localhost on the listener's port.
func domainsOptions(o options) options {
	prev := o.mutate
	o.mutate = func(c *config.Config) {
		port := c.URL[strings.LastIndexByte(c.URL, ':'):]
		c.OtherURLs = []string{"http://other.localhost" + port, "http://third.localhost" + port}
		if prev != nil {
			prev(c)
		}
	}
	return o
}

// mbrowser is a browser with a cookie jar per host, enough for the
// issuer's hosts (each host's cookies, Domain ones included, stay with it).
type mbrowser struct {
	h    *harness
	jars map[string]map[string]string // host name → cookie name → value
}

func (h *harness) mbrowser() *mbrowser {
	return &mbrowser{h: h, jars: map[string]map[string]string{}}
}

// issuerHost reports whether u is on one of the harness's issuer hosts,
// and its host name.
func (b *mbrowser) issuerHost(u *url.URL) (string, bool) {
	host := u.Hostname()
	if u.Port() != b.h.port && (u.Port() != "" || u.Scheme != "https") {
		return host, false
	}
	for _, d := range b.h.srv.domains {
		if d.host == host {
			return host, true
		}
	}
	return host, false
}

// do sends one request to an absolute issuer URL.
func (b *mbrowser) do(method, rawURL string, form url.Values) *response {
	b.h.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		b.h.t.Fatal(err)
	}
	host, ok := b.issuerHost(u)
	if !ok {
		b.h.t.Fatalf("%s is not on an issuer host", rawURL)
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.h.ts.URL+u.RequestURI(), body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Host = u.Host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for name, value := range b.jars[host] {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := b.h.client.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	jar := b.jars[host]
	if jar == nil {
		jar = map[string]string{}
		b.jars[host] = jar
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(jar, c.Name)
		} else {
			jar[c.Name] = c.Value
		}
	}
	return &response{Response: resp, body: string(data)}
}

// hops is a chain of responses a browser followed.
type hops struct {
	steps []*response
	last  *response
	// left is where the chain left the issuer's hosts ("" if it did not).
	left string
}

// follow GETs rawURL and follows redirects (and a Refresh header's URL)
// while they stay on the issuer's hosts.
func (b *mbrowser) follow(rawURL string) hops {
	b.h.t.Helper()
	var out hops
	target := rawURL
	for range 12 {
		r := b.do(http.MethodGet, target, nil)
		out.steps = append(out.steps, r)
		out.last = r
		next := r.Header.Get("Location")
		if next == "" {
			if ref := r.Header.Get("Refresh"); strings.HasPrefix(ref, "0; url=") {
				next = strings.TrimPrefix(ref, "0; url=")
			}
		}
		if next == "" {
			return out
		}
		base, _ := url.Parse(target)
		nu, err := base.Parse(next)
		if err != nil {
			b.h.t.Fatalf("bad redirect %q: %v", next, err)
		}
		if _, ok := b.issuerHost(nu); !ok {
			out.left = nu.String()
			return out
		}
		target = nu.String()
	}
	b.h.t.Fatalf("more than 12 redirects from %s", rawURL)
	return out
}

// login signs in at the primary through its form.
func (b *mbrowser) login(name, pw string) {
	b.h.t.Helper()
	primary := b.h.cfg.URL
	form := b.do(http.MethodGet, primary+"/logout", nil)
	tok := hidden(form.body, "csrf_token")
	r := b.do(http.MethodPost, primary+"/login", url.Values{"username": {name}, "password": {pw}, "csrf_token": {tok}})
	if r.StatusCode != http.StatusSeeOther {
		b.h.t.Fatalf("login %s: status %d, body %s", name, r.StatusCode, r.body)
	}
}

// access is the browser's access token on host.
func (b *mbrowser) access(host string) string {
	return b.jars[host][b.h.cfg.Cookies().Access]
}

// otherURL is other.localhost's issuer URL; appURL a relying page under it.
func (h *harness) otherURL() string { return h.cfg.OtherURLs[0] }
func (h *harness) thirdURL() string { return h.cfg.OtherURLs[1] }
func (h *harness) appURL() string   { return "http://app.other.localhost:8083/page?x=1" }

// hopTo opens refresh on other.localhost for return URL back, as a relying
// page there would, and follows the hop.
func (b *mbrowser) hopTo(back string) hops {
	b.h.t.Helper()
	return b.follow(b.h.otherURL() + "/refresh?return_to=" + url.QueryEscape(back))
}
