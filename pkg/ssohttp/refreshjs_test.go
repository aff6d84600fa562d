package ssohttp

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
	"github.com/canopy-sso/canopy/pkg/sso"
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
	c := &sso.Claims{IssuedAt: ssotest.Epoch.Unix() - 60, Expiry: ssotest.Epoch.Unix() + 240}
	got := string(RefreshScriptTag("/.canopy/refresh.js?v=\"1\"", c, ssotest.Epoch))
	want := `<script src="/.canopy/refresh.js?v=%221%22" data-expires-in="240" data-lifetime="300" defer></script>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestClientRefreshScriptHandler(t *testing.T) {
	k := ssotest.NewEdKey(t, "k1")
	issuer := ssotest.NewFakeIssuer(t, nil, k)
	issuer.SetDown(true)
	issuer.Start()
	client, err := sso.New(context.Background(), sso.Options{Issuer: issuer.URL, Logger: ssotest.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rec := httptest.NewRecorder()
	RefreshScriptHandler(client).ServeHTTP(rec, httptest.NewRequest("GET", RefreshScriptPath, nil))
	if rec.Code != 503 {
		t.Fatalf("before discovery: %d", rec.Code)
	}
	issuer.SetDown(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	RefreshScriptHandler(client).ServeHTTP(rec, httptest.NewRequest("GET", RefreshScriptPath, nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"`+issuer.URL+`/refresh"`) {
		t.Fatalf("after discovery: %d\n%s", rec.Code, rec.Body.String())
	}
}
