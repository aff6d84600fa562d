package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store/pgtest"
)

// Several issuers on one PostgreSQL database: two issuer processes share the
// database and the key directory and sit behind one public URL, as behind a
// load balancer without sticky sessions. The test's proxy decides which
// instance answers: the current one, or the one a request names in
// X-Test-Instance ("0" or "1"). Every response says which one answered.
func TestPostgresIssuers(t *testing.T) {
	t.Parallel()
	cluster, err := pgtest.StartCluster()
	if err != nil {
		pgtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { _ = cluster.Close() })

	t.Run("two issuers", func(t *testing.T) {
		p := newPGStack(t, cluster)
		t.Run("journey across instances", p.testJourney)
		t.Run("refresh race across instances", p.testRefreshRace)
		t.Run("key rotation reaches both", p.testKeyRotation)
		t.Run("login throttle holds across instances", p.testThrottle)
	})
	t.Run("store copy from SQLite", func(t *testing.T) { testStoreCopy(t, cluster) })
}

// pgStack is two issuers behind one public URL, and the per-user relying
// service, all on one database and one key directory.
type pgStack struct {
	*stack // issuerURL is the proxy's public URL; users is the relying service
	dsn    string
	keys   string
	inst   [2]*proc
	port   [2]int
	proxy  *instanceProxy
}

func newPGStack(t *testing.T, c *pgtest.Cluster) *pgStack {
	t.Helper()
	p := &pgStack{stack: &stack{dir: t.TempDir(), domain: "domain.localhost"}, dsn: pgtest.Database(t, c)}
	p.keys = filepath.Join(p.dir, "keys")
	p.issuerPort, p.userPort = freePort(t), freePort(t)
	p.issuerURL = fmt.Sprintf("http://%s:%d", p.domain, p.issuerPort)
	// Both start at once on an empty database and an empty key directory:
	// migrations, the server secrets and the first keys are made exactly once.
	for i := range p.inst {
		p.port[i] = freePort(t)
		p.inst[i] = start(t, "issuer", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", p.port[i]),
			"--url", p.issuerURL, "--db", p.dsn, "--keys", p.keys)
	}
	for i := range p.inst {
		waitHTTP(t, p.direct(i)+"/healthz", p.inst[i])
	}
	p.proxy = newInstanceProxy(t, p.issuerPort, p.port)
	p.users = start(t, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", p.userPort), "--issuer", p.issuerURL,
		"--host", "{username}."+p.domain, "--leeway", "30s", "--revocation-poll", "1s")
	waitReady(t, p.userPort, p.users)
	return p
}

// direct is instance i's own address, bypassing the proxy.
func (p *pgStack) direct(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", p.port[i]) }

// cmd runs an issuer subcommand on the stack's database and keys.
func (p *pgStack) cmd(t testing.TB, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--db", p.dsn, "--keys", p.keys, "--url", p.issuerURL)
	out, err := exec.Command(filepath.Join(binDir, "issuer"), args...).CombinedOutput()
	return string(out), err
}

// refreshVia presents refresh token tok to instance i.
func (p *pgStack) refreshVia(c *http.Client, i int, tok, returnTo string) (hit, error) {
	return fetch(c, http.MethodGet, p.issuerURL+"/refresh?return_to="+url.QueryEscape(returnTo),
		map[string]string{"canopy-refresh": tok}, http.Header{"Accept": {"text/html"}, instanceHeader: {strconv.Itoa(i)}})
}

// testJourney: sign up through instance 0, refresh through instance 1, log
// out through instance 0; instance 1 then refuses the session.
func (p *pgStack) testJourney(t *testing.T) {
	alice := p.userURL("alice")
	b := newBrowser(t)
	p.proxy.use(0)
	if r := p.signUp(t, b, "alice", alicePW, alice); r.status != http.StatusSeeOther || r.location != alice || served(r) != "0" {
		t.Fatalf("sign-up via instance 0: %d %q (served by %q)\n%s", r.status, r.location, served(r), r.body)
	}
	first := b.cookie(p.issuerURL, "canopy-refresh").Value
	sid := tokenSID(t, b.cookie(alice, "canopy").Value)
	if r := b.navigate(alice); r.status != http.StatusOK {
		t.Fatalf("alice's page: %d", r.status)
	}

	p.proxy.use(1)
	r := b.navigate(p.issuerURL + "/refresh?return_to=" + url.QueryEscape(alice))
	if r.status != http.StatusSeeOther || r.location != alice || served(r) != "1" {
		t.Fatalf("refresh via instance 1: %d %q (served by %q)", r.status, r.location, served(r))
	}
	current := b.cookie(p.issuerURL, "canopy-refresh").Value
	if current == first {
		t.Fatal("instance 1 did not rotate the refresh token")
	}
	if r := b.navigate(alice); r.status != http.StatusOK {
		t.Fatalf("alice's page with instance 1's token: %d", r.status)
	}
	// The token instance 0 issued converges on instance 1's successor there.
	if h, err := p.refreshVia(rawClient(), 0, first, alice); err != nil || h.set["canopy-refresh"] != current {
		t.Fatalf("predecessor via instance 0: %v %d, successor %.8s…, want %.8s…", err, h.status, h.set["canopy-refresh"], current)
	}

	p.proxy.use(0)
	page := b.navigate(p.issuerURL + "/logout?return_to=" + url.QueryEscape(alice))
	r = b.post(p.issuerURL+"/logout", url.Values{"csrf_token": {csrf(t, page.body)}, "return_to": {alice}}, p.issuerURL)
	if r.status != http.StatusSeeOther || served(r) != "0" {
		t.Fatalf("logout via instance 0: %d (served by %q)\n%s", r.status, served(r), r.body)
	}
	if h, err := p.refreshVia(rawClient(), 1, current, alice); err != nil || !h.toLogin() {
		t.Fatalf("refresh via instance 1 after logout via 0: %v %d %q, want 303 to /login", err, h.status, h.location)
	}
	h, err := fetch(rawClient(), http.MethodGet, p.direct(1)+"/sessions/revoked", nil, nil)
	if err != nil || !strings.Contains(h.body, `"`+sid+`"`) {
		t.Fatalf("instance 1's revocation feed lacks %s: %v\n%s", sid, err, h.body)
	}
}

// testThrottle guesses dave's password from one browser and address,
// alternating between the instances: 6 failures, 3 on each, pass the 5
// free tries of the (account, address) count for the whole deployment,
// so the right password is refused next on either instance (with memory
// alone each instance would have seen only 3), and works once the backoff
// has passed.
func (p *pgStack) testThrottle(t *testing.T) {
	dave := p.userURL("dave")
	p.proxy.use(0)
	if r := p.signUp(t, newBrowser(t), "dave", alicePW, dave); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d\n%s", r.status, r.body)
	}
	b := newBrowser(t) // no device cookie: counted with everyone else
	for i := range 6 {
		p.proxy.use(i % 2)
		if r := p.signIn(t, b, "dave", "wrong password", dave); r.status != http.StatusUnauthorized || served(r) != strconv.Itoa(i%2) {
			t.Fatalf("wrong password %d: %d (served by %q)", i+1, r.status, served(r))
		}
	}
	for i := range 2 {
		p.proxy.use(i)
		if r := p.signIn(t, b, "dave", alicePW, dave); r.status != http.StatusUnauthorized {
			t.Fatalf("right password via instance %d right after 6 failures across both: %d, want 401 (throttled)", i, r.status)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := p.signIn(t, b, "dave", alicePW, dave)
		if r.status == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("right password still refused 10 s later: %d", r.status)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// testRefreshRace presents one refresh token 20 times at once, half to each
// instance: every response carries the same successor.
func (p *pgStack) testRefreshRace(t *testing.T) {
	bob := p.userURL("bob")
	b := newBrowser(t)
	p.proxy.use(0)
	if r := p.signUp(t, b, "bob", alicePW, bob); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d\n%s", r.status, r.body)
	}
	tok := b.cookie(p.issuerURL, "canopy-refresh").Value
	const n = 20
	c := rawClient()
	results, errs := make([]hit, n), make([]error, n)
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-release
			results[i], errs[i] = p.refreshVia(c, i%2, tok, bob)
		}()
	}
	ready.Wait()
	close(release)
	done.Wait()
	successor := ""
	for i := range n {
		next, _, ok := results[i].rotated(bob)
		if errs[i] != nil || !ok {
			t.Fatalf("request %d via instance %d: %v %d %q", i, i%2, errs[i], results[i].status, results[i].location)
		}
		if successor == "" {
			successor = next
		}
		if next != successor || next == tok {
			t.Fatalf("request %d via instance %d got successor %.8s…, request 0 got %.8s…", i, i%2, next, successor)
		}
	}
	// The one successor is current on both.
	for i := range 2 {
		h, err := p.refreshVia(c, 1-i, successor, bob)
		next, access, ok := h.rotated(bob)
		if err != nil || !ok {
			t.Fatalf("successor via instance %d: %v %d %q", 1-i, err, h.status, h.location)
		}
		if v, err := visit(c, bob, access); err != nil || v.status != http.StatusOK {
			t.Fatalf("access token from instance %d: %v %d", 1-i, err, v.status)
		}
		successor = next
	}
}

// testKeyRotation: `issuer keys rotate --force` on the shared directory is
// published by both instances, and both sign with the new active key.
func (p *pgStack) testKeyRotation(t *testing.T) {
	if out, err := p.cmd(t, "keys", "rotate", "--force"); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	rotatedAt := time.Now()
	out, err := p.cmd(t, "keys", "list")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	states := accessKeyStates(out)
	next, active := keyIn(states, "next"), keyIn(states, "active")
	if next == "" || active == "" {
		t.Fatalf("keys after rotate: %v", states)
	}
	for i := range p.inst {
		waitFor(t, 8*time.Second, fmt.Sprintf("instance %d publishes the new next key", i), func() bool {
			return slices.Contains(jwksKIDs(p.direct(i)), next)
		})
	}
	t.Logf("both instances published the new key %s within %s", next, time.Since(rotatedAt).Round(10*time.Millisecond))

	carol := p.userURL("carol")
	b := newBrowser(t)
	p.proxy.use(0)
	if r := p.signUp(t, b, "carol", alicePW, carol); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	tok := b.cookie(p.issuerURL, "canopy-refresh").Value
	c := rawClient()
	for i := range p.inst {
		waitFor(t, 8*time.Second, fmt.Sprintf("instance %d signs with the new active key", i), func() bool {
			h, err := p.refreshVia(c, i, tok, carol)
			next, access, ok := h.rotated(carol)
			if err != nil || !ok {
				t.Fatalf("refresh via instance %d: %v %d", i, err, h.status)
			}
			tok = next
			return kidOf(access) == active
		})
	}
}

// testStoreCopy moves a running SQLite deployment to PostgreSQL: a user
// signed in before the move stays signed in (the refresh token rotates on
// the PostgreSQL issuer), and the copy refuses a second run.
func testStoreCopy(t *testing.T, c *pgtest.Cluster) {
	s := newStack(t, stackOptions{})
	alice := s.userURL("alice")
	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up on SQLite: %d", r.status)
	}
	tok := b.cookie(s.issuerURL, "canopy-refresh").Value
	s.issuer.Stop()

	dsn := pgtest.Database(t, c)
	sqlitePath := filepath.Join(s.dir, "issuer.db")
	run := func(args ...string) (string, int) {
		out, err := exec.Command(filepath.Join(binDir, "issuer"), args...).CombinedOutput()
		return string(out), exitCode(err)
	}
	out, code := run("store", "copy", "--from", sqlitePath, "--to", dsn)
	if code != 0 || !hasLine(out, "users", "1", "1") || !hasLine(out, "secrets", "2", "2") {
		t.Fatalf("store copy: exit %d\n%s", code, out)
	}
	t.Logf("issuer store copy:\n%s", out)
	if out, code := run("store", "copy", "--from", sqlitePath, "--to", dsn); code != 1 || !strings.Contains(out, "not empty") {
		t.Fatalf("second store copy: exit %d, want 1 (not empty)\n%s", code, out)
	}
	if out, code := run("store", "copy", "--to", dsn); code != 2 {
		t.Fatalf("store copy without --from: exit %d, want 2\n%s", code, out)
	}

	for i, a := range s.issuerArgs {
		if a == "--db" {
			s.issuerArgs[i+1] = dsn
		}
	}
	s.startIssuer(t)
	next, access := s.mustRefresh(t, rawClient(), tok, alice)
	if h, err := visit(rawClient(), alice, access); err != nil || h.status != http.StatusOK || next == tok {
		t.Fatalf("the session from SQLite on PostgreSQL: %v %d", err, h.status)
	}
	if r := s.signIn(t, newBrowser(t), "alice", alicePW, alice); r.status != http.StatusSeeOther || r.location != alice {
		t.Fatalf("sign-in with the copied password hash: %d %q", r.status, r.location)
	}
}

// hasLine reports whether out has a line of exactly these fields.
func hasLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if slices.Equal(strings.Fields(line), fields) {
			return true
		}
	}
	return false
}

// instanceHeader names the instance a request is for; servedHeader the one
// that answered.
const (
	instanceHeader = "X-Test-Instance"
	servedHeader   = "X-Test-Served-By"
)

func served(r response) string { return r.header.Get(servedHeader) }

// instanceProxy is the load balancer: it forwards each request, Host header
// and all, to the instance the request names or else the current one.
type instanceProxy struct {
	current atomic.Int32
}

func newInstanceProxy(t *testing.T, port int, backends [2]int) *instanceProxy {
	t.Helper()
	p := &instanceProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := int(p.current.Load())
			if v, err := strconv.Atoi(r.In.Header.Get(instanceHeader)); err == nil && (v == 0 || v == 1) {
				i = v
			}
			r.SetURL(&url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", backends[i])})
			r.Out.Host = r.In.Host
			r.Out.Header.Set(instanceHeader, strconv.Itoa(i))
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set(servedHeader, resp.Request.Header.Get(instanceHeader))
			return nil
		},
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rp)
	_ = srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

func (p *instanceProxy) use(i int) { p.current.Store(int32(i)) }

// jwksKIDs lists the kids an issuer instance publishes (none on an error).
func jwksKIDs(base string) []string {
	h, err := fetch(rawClient(), http.MethodGet, base+"/.well-known/jwks.json", nil, nil)
	if err != nil || h.status != http.StatusOK {
		return nil
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if json.Unmarshal([]byte(h.body), &set) != nil {
		return nil
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}
