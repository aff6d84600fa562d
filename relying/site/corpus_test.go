package site_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/relying/policy"
	"github.com/canopy-sso/canopy/relying/site"
)

// The hostile-token corpus (testdata/tokens, made by pkg/sso's
// TestGenerateCorpus) sent through the relying example exactly as relying
// main wires it: sso.New against an issuer, site.New, the default 30 s
// leeway. Its own test in pkg/sso verifies the same rows directly.

var corpusDir = filepath.Join("..", "..", "testdata", "tokens")

// corpusRow mirrors pkg/sso's corpus_test.go; see the comments there.
type corpusRow struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	Build *struct {
		Prefix, Of, Repeat string
		Count              int
	} `json:"build"`
	As          string   `json:"as"`
	Want        string   `json:"want"`
	WantBearer  string   `json:"want_bearer"`
	Why         string   `json:"why"`
	RevokedSIDs []string `json:"revoked_sids"`
}

type corpusFile struct {
	Issuer   string      `json:"issuer"`
	Audience string      `json:"audience"`
	Now      int64       `json:"now"`
	Rows     []corpusRow `json:"rows"`
}

func loadCorpus(t *testing.T) *corpusFile {
	data, err := os.ReadFile(filepath.Join(corpusDir, "corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc corpusFile
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for i := range doc.Rows {
		r := &doc.Rows[i]
		if b := r.Build; b != nil {
			r.Token = b.Prefix + tokens[b.Of] + strings.Repeat(b.Repeat, b.Count)
		}
		tokens[r.Name] = r.Token
	}
	if len(doc.Rows) < 60 {
		t.Fatalf("corpus has %d rows", len(doc.Rows))
	}
	return &doc
}

// fakeIssuer serves what sso.New reads from an issuer: discovery, the
// corpus's key set and a revocation feed with the corpus's revoked sids.
func fakeIssuer(t *testing.T, doc *corpusFile) *http.Client {
	jwks, err := os.ReadFile(filepath.Join(corpusDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	type revoked struct {
		SID   string `json:"sid"`
		Until int64  `json:"until"`
	}
	var feed struct {
		Revoked []revoked `json:"revoked"`
	}
	feed.Revoked = []revoked{}
	for _, r := range doc.Rows {
		for _, sid := range r.RevokedSIDs {
			feed.Revoked = append(feed.Revoked, revoked{sid, doc.Now + 3600})
		}
	}
	iss := doc.Issuer
	disc := map[string]any{
		"issuer": iss, "jwks_uri": iss + "/.well-known/jwks.json", "id_token_signing_alg_values_supported": []string{"EdDSA", "ES256"},
		"canopy_cookie_name": "canopy", "canopy_cookie_domain": doc.Audience, "canopy_revocation_uri": iss + "/sessions/revoked",
		"canopy_refresh_uri": iss + "/refresh", "canopy_login_uri": iss + "/login",
	}
	mux := http.NewServeMux()
	serveJSON := func(path string, body any) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=300")
			_ = json.NewEncoder(w).Encode(body)
		})
	}
	serveJSON("/.well-known/openid-configuration", disc)
	serveJSON("/.well-known/jwks.json", json.RawMessage(jwks))
	serveJSON("/sessions/revoked", feed)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The issuer URL's host is domain.localhost: dial the test server for it.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// corpusClient is an sso.Client of the corpus's issuer with the clock at the
// corpus's now, ready to verify.
func corpusClient(t *testing.T, doc *corpusFile) *sso.Client {
	now := func() time.Time { return time.Unix(doc.Now, 0) }
	client, err := sso.New(t.Context(), sso.Options{Issuer: doc.Issuer, HTTPClient: fakeIssuer(t, doc),
		RevocationPoll: time.Hour, Leeway: 30 * time.Second, Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := client.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return client
}

// testSite is the relying example on client for pattern, with the corpus's
// clock; cfg sets the other fields.
func testSite(t *testing.T, doc *corpusFile, client *sso.Client, pattern string, cfg site.Config) http.Handler {
	var err error
	if cfg.Pattern, err = policy.ParsePattern(pattern); err != nil {
		t.Fatal(err)
	}
	cfg.Issuer, cfg.Client, cfg.Log = doc.Issuer, client, slog.New(slog.DiscardHandler)
	cfg.Now = func() time.Time { return time.Unix(doc.Now, 0) }
	h, err := site.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// loadTable reads testdata/requests/name into v.
func loadTable(t *testing.T, name string, v any) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "requests", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// corpusSite is the relying example for {username}.domain.localhost with the
// clock at the corpus's now.
func corpusSite(t *testing.T, doc *corpusFile) http.Handler {
	client := corpusClient(t, doc)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The revocation feed's first poll runs in the background: wait for it.
	for _, r := range doc.Rows {
		for len(r.RevokedSIDs) > 0 {
			if _, err := client.Verify(ctx, r.Token); errors.Is(err, sso.ErrRevoked) || ctx.Err() != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return testSite(t, doc, client, "{username}.domain.localhost", site.Config{})
}

// TestCorpusThroughRelying sends every corpus row to alice.domain.localhost
// as an API request, as the canopy cookie and as a Bearer token: accepted
// rows get 200, the others 401 with RFC 6750's invalid_token and the row's
// reason. Whole Cookie headers also go over a real server with relying's
// header limit, which may answer 431 first.
func TestCorpusThroughRelying(t *testing.T) {
	doc := loadCorpus(t)
	h := corpusSite(t, doc)
	for _, row := range doc.Rows {
		t.Run(row.Name, func(t *testing.T) {
			if row.As == "cookie-header" {
				checkResponse(t, serve(h, "Cookie", row.Token), row.Want)
				checkOverTheWire(t, h, row.Token)
				return
			}
			checkResponse(t, serve(h, "Cookie", "canopy="+row.Token), row.Want)
			want := row.Want
			if row.WantBearer != "" {
				want = row.WantBearer
			}
			checkResponse(t, serve(h, "Authorization", "Bearer "+row.Token), want)
		})
	}
}

func serve(h http.Handler, header, value string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://alice.domain.localhost/", nil)
	r.Header.Set(header, value)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func checkResponse(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if want == "accept" {
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
		}
		return
	}
	var body struct{ Error, Reason string }
	if rec.Code != http.StatusUnauthorized || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		t.Fatalf("status %d, want 401: %.200s", rec.Code, rec.Body)
	}
	wantErr, challenge := "invalid_token", `Bearer realm="canopy", error="invalid_token"`
	if want == "missing" {
		wantErr, challenge = "unauthenticated", `Bearer realm="canopy"`
	}
	if body.Reason != want || body.Error != wantErr {
		t.Fatalf("body %+v, want error %s reason %s", body, wantErr, want)
	}
	if got := rec.Header().Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
	}
}

// checkOverTheWire sends a Cookie header to h behind an http.Server with
// relying main's limit (64 KiB): 401 or 431, never a 5xx.
func checkOverTheWire(t *testing.T, h http.Handler, cookie string) {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = 64 << 10
	srv.Start()
	defer srv.Close()
	req, err := http.NewRequest("GET", srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "alice.domain.localhost"
	req.Header.Set("Cookie", cookie)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("over the wire: status %d, want 401 or 431", res.StatusCode)
	}
	t.Logf("over the wire: %d (%s)", res.StatusCode, fmt.Sprint(len(cookie)/1024)+" KiB")
}
