package sso

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

func newTestRemote(t *testing.T, url string, clk *ssotest.Clock, mod ...func(*RemoteOptions)) *RemoteKeySet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := RemoteOptions{Now: clk.Now, Logger: ssotest.DiscardLogger()}
	for _, m := range mod {
		m(&opts)
	}
	ks := NewRemoteKeySet(ctx, url, opts)
	t.Cleanup(func() {
		cancel()
		ks.wait() // no goroutine outlives the set
	})
	return ks
}

func waitReady(t *testing.T, ks *RemoteKeySet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ks.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshDelay(t *testing.T) {
	ks := &RemoteKeySet{min: 10 * time.Second, max: time.Hour, def: 5 * time.Minute}
	cases := []struct {
		cacheControl string
		want         time.Duration
	}{
		{"public, max-age=120", 120 * time.Second},
		{"max-age=1", 10 * time.Second},
		{"max-age=99999", time.Hour},
		{"", 5 * time.Minute},
		{"public", 5 * time.Minute},
		{"no-store", 10 * time.Second},
		{"no-cache, max-age=600", 10 * time.Second},
		{"max-age=bogus", 5 * time.Minute},
		{`max-age="60"`, 60 * time.Second},
		{"MAX-AGE=60", 60 * time.Second},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.cacheControl != "" {
			h.Set("Cache-Control", tc.cacheControl)
		}
		if got := ks.refreshDelay(maxAge(h)); got != tc.want {
			t.Errorf("Cache-Control %q: delay %v, want %v", tc.cacheControl, got, tc.want)
		}
	}
}

func TestRemoteKeySetRefreshesInBackground(t *testing.T) {
	k := ssotest.NewEdKey(t, "k1")
	srv := ssotest.NewJWKSServer(t, k)
	srv.Set(func(s *ssotest.JWKSServer) { s.MaxAge = "max-age=0" })
	ks := newTestRemote(t, srv.URL, ssotest.NewClock(), func(o *RemoteOptions) { o.MinRefresh = 20 * time.Millisecond })
	waitReady(t, ks)
	deadline := time.Now().Add(5 * time.Second)
	for srv.FetchCount() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d fetches; max-age=0 bounded to 20ms should refetch often", srv.FetchCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if srv.NotModified.Load() == 0 {
		t.Fatal("background refetches did not send If-None-Match")
	}
}

func TestRemoteKeySetETag(t *testing.T) {
	k := ssotest.NewEdKey(t, "k1")
	srv := ssotest.NewJWKSServer(t, k)
	ks := newTestRemote(t, srv.URL, ssotest.NewClock())
	waitReady(t, ks)
	gen := ks.Generation()
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.NotModified.Load() != 1 {
		t.Fatalf("304s: %d, want 1", srv.NotModified.Load())
	}
	if _, err := ks.Key(context.Background(), "k1"); err != nil || ks.Generation() != gen || !ks.Healthy() {
		t.Fatalf("after 304: key err %v, generation %d→%d, healthy %v", err, gen, ks.Generation(), ks.Healthy())
	}
	// Same keys in a new document (another order, other fields) keep the generation.
	srv.SetBody([]byte(`{"keys":[` + mustJSON(t, k.JWK()) + `],"extra":1}`))
	if err := ks.Refresh(context.Background()); err != nil || ks.Generation() != gen {
		t.Fatalf("same keys: err %v, generation %d→%d", err, gen, ks.Generation())
	}
	k2 := ssotest.NewESKey(t, "k2")
	srv.SetKeys(k, k2)
	if err := ks.Refresh(context.Background()); err != nil || ks.Generation() == gen {
		t.Fatalf("new key: err %v, generation unchanged", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRemoteKeySetUnknownKidRefetch(t *testing.T) {
	k1, k2, k3 := ssotest.NewEdKey(t, "k1"), ssotest.NewESKey(t, "k2"), ssotest.NewEdKey(t, "k3")
	srv := ssotest.NewJWKSServer(t, k1)
	clk := ssotest.NewClock()
	ks := newTestRemote(t, srv.URL, clk)
	waitReady(t, ks)
	ctx := context.Background()
	if n := srv.FetchCount(); n != 1 {
		t.Fatalf("fetches at start: %d", n)
	}

	// An unknown kid refetches at once, even right after a background fetch
	// (a key published just after it must be found), and 100 concurrent
	// lookups share exactly one fetch.
	srv.SetKeys(k1, k2)
	gate := make(chan struct{})
	srv.Set(func(s *ssotest.JWKSServer) { s.Gate = gate })
	var start, done sync.WaitGroup
	start.Add(1)
	errs := make(chan error, 100)
	for range 100 {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			_, err := ks.Key(ctx, "k2")
			errs <- err
		}()
	}
	start.Done()
	ssotest.WaitFor(t, func() bool { return srv.FetchCount() == 2 })
	close(gate)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Key: %v", err)
		}
	}
	if n := srv.FetchCount(); n != 2 {
		t.Fatalf("fetches: %d, want 2 (one collapsed refetch)", n)
	}
	srv.Set(func(s *ssotest.JWKSServer) { s.Gate = nil })

	// Another unknown kid right after: refused without a fetch.
	if _, err := ks.Key(ctx, "k3"); !errors.Is(err, ErrUnknownKey) || srv.FetchCount() != 2 {
		t.Fatalf("err %v, fetches %d", err, srv.FetchCount())
	}
	// 10 s later it is fetched, and found.
	srv.SetKeys(k1, k2, k3)
	clk.Add(10 * time.Second)
	if _, err := ks.Key(ctx, "k3"); err != nil || srv.FetchCount() != 3 {
		t.Fatalf("err %v, fetches %d", err, srv.FetchCount())
	}
}

func TestRemoteKeySetKeepsLastGoodSet(t *testing.T) {
	k := ssotest.NewEdKey(t, "k1")
	private := `{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"p","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`
	cases := []struct {
		name  string
		setup func(s *ssotest.JWKSServer)
	}{
		{"500", func(s *ssotest.JWKSServer) { s.Status = 500 }},
		{"404", func(s *ssotest.JWKSServer) { s.Status = 404 }},
		{"HTML", func(s *ssotest.JWKSServer) {
			s.ContentType = "text/html"
			s.Body = []byte("<html><body>Bad gateway</body></html>")
		}},
		{"garbage", func(s *ssotest.JWKSServer) { s.Body = []byte("<html>") }},
		{"truncated JSON", func(s *ssotest.JWKSServer) { s.Body = s.Body[:len(s.Body)/2] }},
		{"cut short", func(s *ssotest.JWKSServer) { s.Truncate = true; s.Body = append(s.Body, ' ') }},
		{"not a JWKS", func(s *ssotest.JWKSServer) { s.Body = []byte(`["keys"]`) }},
		{"empty set", func(s *ssotest.JWKSServer) { s.Body = []byte(`{"keys":[]}`) }},
		{"no keys member", func(s *ssotest.JWKSServer) { s.Body = []byte(`{}`) }},
		{"only unusable keys", func(s *ssotest.JWKSServer) { s.Body = []byte(`{"keys":[` + private + `]}`) }},
		{"over 1 MiB", func(s *ssotest.JWKSServer) {
			s.Body = []byte(`{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + mustJSONKey(k) + `]}`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := ssotest.NewJWKSServer(t, k)
			ks := newTestRemote(t, srv.URL, ssotest.NewClock())
			waitReady(t, ks)
			gen := ks.Generation()
			srv.Set(tc.setup)
			if err := ks.Refresh(context.Background()); err == nil {
				t.Fatal("bad response accepted")
			}
			if ks.Healthy() || ks.LastFetchError() == nil {
				t.Fatalf("healthy after a failed fetch")
			}
			if _, err := ks.Key(context.Background(), "k1"); err != nil || ks.Generation() != gen {
				t.Fatalf("last good set lost: %v, generation %d→%d", err, gen, ks.Generation())
			}
			srv.Set(func(s *ssotest.JWKSServer) { s.Status, s.ContentType, s.Truncate = 200, "application/json", false })
			srv.SetKeys(ssotest.NewEdKey(t, "k2"), k)
			if err := ks.Refresh(context.Background()); err != nil || !ks.Healthy() {
				t.Fatalf("recovery: %v", err)
			}
		})
	}
}

func mustJSONKey(k *ssotest.Key) string {
	b, _ := k.JWK().MarshalJSON()
	return string(b)
}

func TestRemoteKeySetSkipsBadKeys(t *testing.T) {
	good := ssotest.NewEdKey(t, "good")
	es := ssotest.NewESKey(t, "es")
	body := `{"keys":[
	 {"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"private","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"},
	 {"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"nouse","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	 {"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"enc","kid":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	 {"kty":"OKP","crv":"Ed25519","alg":"ES256","use":"sig","kid":"crvmismatch","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	 {"kty":"OKP","crv":"Ed25519","use":"sig","kid":"noalg","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	 {"kty":"oct","alg":"HS256","use":"sig","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
	 {"kty":"EC","crv":"P-384","alg":"ES256","use":"sig","kid":"p384","x":"iA7lWQLzVrKGEFjfGMfMHfTEZ2KnLiKU7JuNT3E7ygsfE7ygsfE7ygsfE7ygsfE7","y":"iA7lWQLzVrKGEFjfGMfMHfTEZ2KnLiKU7JuNT3E7ygsfE7ygsfE7ygsfE7ygsfE7"},
	 {"kty":"XYZ","kid":"weird"},
	 ` + mustJSONKey(es) + `,
	 ` + mustJSONKey(good) + `]}`
	srv := ssotest.NewJWKSServer(t)
	srv.SetBody([]byte(body))
	ks := newTestRemote(t, srv.URL, ssotest.NewClock())
	waitReady(t, ks)
	m := *ks.keys.Load()
	if len(m) != 2 || m["good"] == nil || m["es"] == nil {
		kids := []string{}
		for kid := range m {
			kids = append(kids, kid)
		}
		t.Fatalf("usable kids %v, want [es good]", kids)
	}
}

func TestRemoteKeySetStartsWhileIssuerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	clk := ssotest.NewClock()
	ks := newTestRemote(t, "http://"+addr+"/jwks", clk)
	ctx := context.Background()
	ssotest.WaitFor(t, func() bool {
		return ks.LastFetchError() != nil && !strings.Contains(ks.LastFetchError().Error(), "no fetch")
	})
	if _, err := ks.Key(ctx, "k1"); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("err %v, want ErrNoKeys", err)
	}
	if ks.Ready() || ks.Healthy() {
		t.Fatal("ready with no keys")
	}

	k := ssotest.NewEdKey(t, "k1")
	srv := httptest.NewUnstartedServer(nil)
	js := &ssotest.JWKSServer{Status: 200, ContentType: "application/json", MaxAge: "max-age=300"}
	js.SetKeys(k)
	srv.Config.Handler = http.HandlerFunc(js.ServeHTTP)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	clk.Add(time.Minute) // past the unknown-kid rate limit
	if _, err := ks.Key(ctx, "k1"); err != nil {
		t.Fatalf("issuer up: %v", err)
	}
	if !ks.Ready() || !ks.Healthy() {
		t.Fatal("not ready after the issuer came up")
	}
}

// An issuer that is also an OpenID Provider publishes RS256 (and other)
// keys for ID tokens: a relying service uses its own keys from the same set
// and ignores the others without an error or a log line, at every fetch.
func TestRemoteKeySetIgnoresForeignAlgorithmsQuietly(t *testing.T) {
	good := ssotest.NewEdKey(t, "good")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: "rsa", Algorithm: "RS256", Use: "sig"},
		{Key: &rsaKey.PublicKey, KeyID: "ps", Algorithm: "PS256", Use: "sig"},
		{Key: p384.Public(), KeyID: "p384", Algorithm: "ES384", Use: "sig"},
		good.JWK(),
	}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := ssotest.NewJWKSServer(t)
	srv.SetBody(body)
	var logs bytes.Buffer
	clk := ssotest.NewClock()
	ks := newTestRemote(t, srv.URL, clk, func(o *RemoteOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	waitReady(t, ks)
	if _, err := ks.Key(context.Background(), "good"); err != nil {
		t.Fatalf("own key: %v", err)
	}
	for _, kid := range []string{"rsa", "ps", "p384"} {
		if _, err := ks.Key(context.Background(), kid); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Key(%s): %v, want ErrUnknownKey", kid, err)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("foreign keys were logged:\n%s", logs.String())
	}
	// The static set takes the same set without an error.
	if _, err := NewStaticKeySet(set.Keys...); err != nil {
		t.Errorf("NewStaticKeySet: %v", err)
	}
	// An HMAC key is no ID token key: still reported.
	hmac := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hs", Algorithm: "HS256", Use: "sig"}
	if _, err := NewStaticKeySet(good.JWK(), hmac); err == nil {
		t.Error("an HS256 key passed quietly")
	}
}
