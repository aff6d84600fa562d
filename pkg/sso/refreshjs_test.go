package sso

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRefreshScript(t *testing.T) {
	h := RefreshScript("http://domain.localhost:8080/refresh?x=</script>")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", RefreshScriptPath, nil))
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" ||
		rec.Header().Get("Cache-Control") != "public, max-age=300" || rec.Header().Get("ETag") == "" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if strings.Contains(body, "</script>") || !strings.Contains(body, `"http://domain.localhost:8080/refresh?x=\u003c/script\u003e"`) {
		t.Fatalf("refresh URL not embedded safely:\n%s", body)
	}
	for _, want := range []string{`method: "POST"`, `credentials: "include"`, "data", "canopy:signed-out"} {
		if !strings.Contains(body, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	r := httptest.NewRequest("GET", RefreshScriptPath, nil)
	r.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 304 {
		t.Fatalf("If-None-Match: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", RefreshScriptPath, nil))
	if rec.Code != 405 {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestRefreshScriptTag(t *testing.T) {
	c := &Claims{IssuedAt: testEpoch.Unix() - 60, Expiry: testEpoch.Unix() + 240}
	got := string(RefreshScriptTag("/.canopy/refresh.js?v=\"1\"", c, testEpoch))
	want := `<script src="/.canopy/refresh.js?v=%221%22" data-expires-in="240" data-lifetime="300" defer></script>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestClientRefreshScriptHandler(t *testing.T) {
	k := newEdKey(t, "k1")
	issuer := newFakeIssuer(t, nil, k)
	issuer.setDown(true)
	issuer.Start()
	client, err := New(context.Background(), Options{Issuer: issuer.url, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rec := httptest.NewRecorder()
	client.RefreshScriptHandler().ServeHTTP(rec, httptest.NewRequest("GET", RefreshScriptPath, nil))
	if rec.Code != 503 {
		t.Fatalf("before discovery: %d", rec.Code)
	}
	issuer.setDown(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	client.RefreshScriptHandler().ServeHTTP(rec, httptest.NewRequest("GET", RefreshScriptPath, nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"`+issuer.url+`/refresh"`) {
		t.Fatalf("after discovery: %d\n%s", rec.Code, rec.Body.String())
	}
}

func TestIssuerProbe(t *testing.T) {
	var status atomic.Int64
	var hits atomic.Int64
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	clk := newClock()
	p := newIssuerProbe(srv.Client(), srv.URL+"/healthz", clk.Now)
	if p.down() {
		t.Fatal("healthy issuer reported down")
	}
	status.Store(503)
	if p.down() || hits.Load() != 1 {
		t.Fatalf("cached answer not used: hits %d", hits.Load())
	}
	clk.Add(probeTTL)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.down() {
				t.Error("503 issuer reported up")
			}
		}()
	}
	wg.Wait()
	if hits.Load() != 2 {
		t.Fatalf("concurrent probes not collapsed: %d hits", hits.Load())
	}
	srv.Close()
	clk.Add(probeTTL)
	if !p.down() {
		t.Fatal("unreachable issuer reported up")
	}
}
