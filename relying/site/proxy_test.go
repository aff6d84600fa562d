package site_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/relying/site"
)

// TestProxySmuggling sends every row of testdata/requests/proxy_smuggling.json
// from a signed-in alice through proxy mode to a real upstream server, which
// must see alice's identity and nothing a client could have added or removed.
func TestProxySmuggling(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	var table struct {
		Rows []struct {
			Name              string      `json:"name"`
			Cookie            string      `json:"cookie"`
			Headers           [][2]string `json:"headers"`
			WantAuthorization string      `json:"want_authorization"`
		} `json:"rows"`
	}
	loadTable(t, "proxy_smuggling.json", &table)
	// The app answers with every header it received.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(upstream.Close)
	upURL, _ := url.Parse(upstream.URL)
	h := testSite(t, doc, corpusClient(t, doc), "app.domain.localhost", site.Config{Upstream: upURL})
	// Over a real connection, so that header names arrive as a client wrote them.
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)

	for _, row := range table.Rows {
		t.Run(row.Name, func(t *testing.T) {
			req, err := http.NewRequest("GET", front.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "app.domain.localhost"
			if row.Cookie != "none" {
				req.Header.Set("Cookie", "canopy="+tokens["alice"].token+"; theme=dark")
			}
			for _, kv := range row.Headers {
				// Set the raw key: http.Header.Add would canonicalise it.
				req.Header[kv[0]] = append(req.Header[kv[0]], expandTokens(kv[1], tokens))
			}
			res, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			var seen http.Header
			if err := json.NewDecoder(res.Body).Decode(&seen); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{site.HeaderUser: "alice", site.HeaderSub: "u_alice", site.HeaderSid: "s_alice"}
			for k, v := range seen {
				norm := strings.ReplaceAll(strings.ToLower(k), "_", "-")
				if !strings.HasPrefix(norm, "x-canopy-") {
					continue
				}
				if w, ok := want[k]; !ok || len(v) != 1 || v[0] != w {
					t.Errorf("app saw %s: %q", k, v)
				}
			}
			for k, w := range want {
				if got := seen.Get(k); got != w {
					t.Errorf("app saw %s %q, want %q", k, got, w)
				}
			}
			if got := strings.Join(seen.Values("Authorization"), ", "); got != row.WantAuthorization {
				t.Errorf("app saw Authorization %q, want %q", got, row.WantAuthorization)
			}
			if c := strings.Join(seen.Values("Cookie"), "; "); strings.Contains(c, "canopy=") || (row.Cookie != "none" && !strings.Contains(c, "theme=dark")) {
				t.Errorf("app saw Cookie %q: want the access cookie gone and the others kept", c)
			}
		})
	}
}
