package site_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/relying/policy"
	"github.com/canopy-sso/canopy/relying/site"
)

const routerPolicy = `issuer: http://domain.localhost:8080
hosts:
  - host: "{username}.domain.localhost"
    owner_only: true
  - host: app.domain.localhost
    upstream: {upstream}
    public_paths: [/healthz, /public/]
  - host: staff.domain.localhost
    require_groups: [staff]
  - host: "*.tools.domain.localhost"
  - host: open.tools.domain.localhost
    upstream: {upstream}
    forward_token: true
`

// echoUpstream answers with what it was told: the identity header, the
// Authorization header and the Cookie header, each as X-Seen-*.
func echoUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-User", r.Header.Get(site.HeaderUser))
		w.Header().Set("X-Seen-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Seen-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("X-Seen", "1")
	}))
	t.Cleanup(up.Close)
	return up
}

func newRouter(t *testing.T, client *sso.Client, text string) *site.Router {
	p, err := policy.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := site.NewRouter(site.RouterConfig{
		Client:         func(string) (*sso.Client, error) { return client, nil },
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Log:            slog.New(slog.DiscardHandler),
	}, p)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestRouterTable sends every row of testdata/requests/policy_routes.json
// through one Router serving five entries.
func TestRouterTable(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	client := corpusClient(t, doc)
	up := echoUpstream(t)
	rt := newRouter(t, client, strings.ReplaceAll(routerPolicy, "{upstream}", up.URL))
	var table struct {
		Rows []struct {
			Name, Mode, Host, Path, User string
			Want                         int
			UpstreamUser                 string `json:"upstream_user"`
			FAUser                       string `json:"fa_user"`
			Bearer                       bool
		} `json:"rows"`
	}
	loadTable(t, "policy_routes.json", &table)
	for _, row := range table.Rows {
		t.Run(row.Name, func(t *testing.T) {
			var r *http.Request
			if row.Mode == "forward" {
				r = httptest.NewRequest("GET", "http://relying.internal"+site.AuthPath, nil)
				r.Header.Set("X-Original-URL", "http://"+row.Host+row.Path)
			} else {
				r = httptest.NewRequest("GET", "http://"+row.Host+row.Path, nil)
				r.Header.Set("Accept", "application/json")
			}
			r.RemoteAddr = "127.0.0.1:40000"
			if row.User != "" {
				r.Header.Set("Cookie", "canopy="+tokens[row.User].token+"; other=1")
			}
			rec := httptest.NewRecorder()
			rt.ServeHTTP(rec, r)
			if rec.Code != row.Want {
				t.Fatalf("status %d, want %d: %.300s", rec.Code, row.Want, rec.Body)
			}
			h := rec.Header()
			if row.Mode == "forward" {
				if row.Want == http.StatusOK && h.Get(site.HeaderUser) != row.FAUser {
					t.Errorf("X-Canopy-User %q, want %q", h.Get(site.HeaderUser), row.FAUser)
				}
				return
			}
			if row.UpstreamUser == "-" {
				if h.Get("X-Seen") != "" {
					t.Errorf("the upstream was reached")
				}
				return
			}
			if h.Get("X-Seen") == "" || h.Get("X-Seen-User") != row.UpstreamUser {
				t.Errorf("upstream saw user %q (reached: %q), want %q", h.Get("X-Seen-User"), h.Get("X-Seen"), row.UpstreamUser)
			}
			if strings.Contains(h.Get("X-Seen-Cookie"), "canopy=") || h.Get("X-Seen-Cookie") != "other=1" && row.User != "" {
				t.Errorf("upstream saw cookies %q", h.Get("X-Seen-Cookie"))
			}
			if got, want := h.Get("X-Seen-Auth"), "Bearer "+tokens[row.User].token; (got == want) != row.Bearer || (!row.Bearer && got != "") {
				t.Errorf("upstream saw Authorization %.40q, bearer %v", got, row.Bearer)
			}
		})
	}
}

// TestRouterReloadInFlight: a request that started under one policy
// finishes under it; the next one gets the new policy.
func TestRouterReloadInFlight(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	client := corpusClient(t, doc)
	entered, release := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		w.Header().Set("X-Seen-User", r.Header.Get(site.HeaderUser))
	}))
	t.Cleanup(up.Close)
	open := "issuer: http://domain.localhost:8080\nhosts:\n  - host: app.domain.localhost\n    upstream: " + up.URL + "\n"
	rt := newRouter(t, client, open)
	get := func(path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://app.domain.localhost"+path, nil)
		r.Header.Set("Cookie", "canopy="+tokens["alice"].token)
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, r)
		return rec
	}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- get("/slow") }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}
	closed, err := policy.Parse("b.yaml", []byte(open+"    require_groups: [staff]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Load(closed); err != nil {
		t.Fatal(err)
	}
	if rec := get("/fast"); rec.Code != http.StatusForbidden {
		t.Errorf("after the reload: status %d, want 403", rec.Code)
	}
	close(release)
	if rec := <-done; rec.Code != http.StatusOK || rec.Header().Get("X-Seen-User") != "alice" {
		t.Errorf("in-flight request: status %d, user %q; want 200 alice", rec.Code, rec.Header().Get("X-Seen-User"))
	}
	if rt.Policy() != closed {
		t.Error("Policy() is not the loaded policy")
	}
}

// TestRouterClientPerIssuer: one sso.Client per distinct issuer, kept
// across reloads; a policy whose client cannot be made is refused whole.
func TestRouterClientPerIssuer(t *testing.T) {
	var asked []string
	rt, err := site.NewRouter(site.RouterConfig{
		Client: func(issuer string) (*sso.Client, error) {
			asked = append(asked, issuer)
			if issuer == "https://broken.example" {
				return nil, errors.New("no client for you")
			}
			c, err := sso.New(t.Context(), sso.Options{Issuer: issuer, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				t.Cleanup(func() { _ = c.Close() })
			}
			return c, err
		},
		Log: slog.New(slog.DiscardHandler),
	}, mustParse(t, `issuer: https://domain.com
hosts:
  - host: a.domain.com
  - host: b.domain.com
  - host: c.other.org
    issuer: https://other.org
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(asked, " "); got != "https://domain.com https://other.org" {
		t.Fatalf("clients made for %q", got)
	}
	if err := rt.Load(mustParse(t, "issuer: https://other.org\nhosts:\n  - host: x.other.org\n  - host: y.third.net\n    issuer: https://third.net\n")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(asked, " "); got != "https://domain.com https://other.org https://third.net" {
		t.Fatalf("after the reload, clients made for %q", got)
	}
	before := rt.Policy()
	if err := rt.Load(mustParse(t, "issuer: https://broken.example\nhosts:\n  - host: z.broken.example\n")); err == nil || rt.Policy() != before {
		t.Fatalf("a policy without a client: %v, policy replaced %v", err, rt.Policy() != before)
	}
}

func mustParse(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
