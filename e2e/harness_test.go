// Package e2e runs the real issuer and relying binaries on loopback and walks
// the journeys a user takes, with an HTTP client and a cookie jar (and, in the
// browser tests, a real Chromium).
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

// binDir holds the binaries built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "canopy-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, prog := range []string{"issuer", "relying"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, prog), "../"+prog)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", prog, err)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a running binary whose output is kept for the test log.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// start runs a binary until the test ends (or Stop/Kill).
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, name, args...)
}

// startEnv is start with extra environment variables (KEY=value).
func startEnv(t testing.TB, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.Env = append(append(os.Environ(), "CANOPY_ISSUER_LOG_FORMAT=text"), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- %s %s output:\n%s", name, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Stop sends SIGTERM and waits; Kill sends SIGKILL.
func (p *proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitHTTP polls url until it answers 200 or the deadline passes.
func waitHTTP(t testing.TB, u string, p *proc) {
	t.Helper()
	c := localhost.Client(time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited early:\n%s", p.name, p.Output())
		default:
		}
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready at %s:\n%s", p.name, u, p.Output())
}

// stack is one issuer and two relying services: per-user hosts and app.
type stack struct {
	dir        string
	domain     string // cookie domain
	issuerURL  string
	issuerPort int
	userPort   int
	appPort    int
	issuer     *proc
	users      *proc
	app        *proc
	issuerArgs []string
}

type stackOptions struct {
	accessTTL string
	leeway    string
	extra     []string // extra issuer flags
	relying   []string // extra relying flags

	// extraFor adds issuer flags that name the issuer's port.
	extraFor func(issuerPort int) []string
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	if o.accessTTL == "" {
		o.accessTTL = "5m"
	}
	if o.leeway == "" {
		o.leeway = "30s"
	}
	s := &stack{dir: t.TempDir(), domain: "domain.localhost"}
	s.issuerPort, s.userPort, s.appPort = freePort(t), freePort(t), freePort(t)
	s.issuerURL = fmt.Sprintf("http://%s:%d", s.domain, s.issuerPort)
	if o.extraFor != nil {
		o.extra = append(o.extra, o.extraFor(s.issuerPort)...)
	}
	s.issuerArgs = append([]string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", s.issuerPort), "--url", s.issuerURL,
		"--db", filepath.Join(s.dir, "issuer.db"), "--keys", filepath.Join(s.dir, "keys"),
		"--access-ttl", o.accessTTL}, o.extra...)
	s.startIssuer(t)
	rel := func(port int, host string) *proc {
		args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", s.issuerURL,
			"--host", host, "--leeway", o.leeway, "--revocation-poll", "1s"}, o.relying...)
		p := start(t, "relying", args...)
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/healthz", port), p)
		return p
	}
	s.users = rel(s.userPort, "{username}."+s.domain)
	s.app = rel(s.appPort, "app."+s.domain)
	return s
}

func (s *stack) startIssuer(t testing.TB) {
	s.issuer = start(t, "issuer", s.issuerArgs...)
	waitHTTP(t, s.issuerURL+"/healthz", s.issuer)
}

func (s *stack) userURL(name string) string {
	return fmt.Sprintf("http://%s.%s:%d/", name, s.domain, s.userPort)
}

func (s *stack) appURL() string { return fmt.Sprintf("http://app.%s:%d/", s.domain, s.appPort) }

// issuerCmd runs an issuer subcommand on the stack's database and keys.
func (s *stack) issuerCmd(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--db", filepath.Join(s.dir, "issuer.db"), "--keys", filepath.Join(s.dir, "keys"), "--url", s.issuerURL)
	cmd := exec.Command(filepath.Join(binDir, "issuer"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// browser is an HTTP client with a cookie jar that does not follow redirects,
// so that each hop can be checked, and sends browser-like navigation headers.
type browser struct {
	t      testing.TB
	client *http.Client
	jar    *cookiejar.Jar
}

func newBrowser(t testing.TB) *browser {
	jar, err := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, jar: jar, client: &http.Client{
		Transport: localhost.Transport(), Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, location: resp.Header.Get("Location"), header: resp.Header, body: string(body)}
}

// navigate is a top-level browser navigation (GET, Accept text/html, Sec-Fetch-Mode navigate).
func (b *browser) navigate(u string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	return b.do(req)
}

// api is a non-navigation request (like curl or fetch()).
func (b *browser) api(method, u string) response {
	b.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	return b.do(req)
}

// post submits a form as the issuer's own page would.
func (b *browser) post(u string, form url.Values, origin string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Accept", "text/html")
	return b.do(req)
}

func (b *browser) cookie(u, name string) *http.Cookie {
	pu, err := url.Parse(u)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range b.jar.Cookies(pu) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf extracts the CSRF token of the first form in an HTML page.
func csrf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%s", page)
	}
	return m[1]
}

// signUp registers name through the forms, starting from returnTo.
func (s *stack) signUp(t testing.TB, b *browser, name, pw, returnTo string) response {
	t.Helper()
	page := b.navigate(s.issuerURL + "/register?return_to=" + url.QueryEscape(returnTo))
	if page.status != http.StatusOK {
		t.Fatalf("GET /register: %d", page.status)
	}
	return b.post(s.issuerURL+"/register", url.Values{"username": {name}, "password": {pw},
		"csrf_token": {csrf(t, page.body)}, "return_to": {returnTo}}, s.issuerURL)
}

// signIn logs in through the login form.
func (s *stack) signIn(t testing.TB, b *browser, name, pw, returnTo string) response {
	t.Helper()
	page := b.navigate(s.issuerURL + "/login?prompt=login&return_to=" + url.QueryEscape(returnTo))
	if page.status != http.StatusOK {
		t.Fatalf("GET /login: %d", page.status)
	}
	return b.post(s.issuerURL+"/login", url.Values{"username": {name}, "password": {pw},
		"csrf_token": {csrf(t, page.body)}, "return_to": {returnTo}}, s.issuerURL)
}
