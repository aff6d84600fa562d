package clients

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func TestCheckRedirectURITable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "oidc", "redirect_uris.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Rows []struct {
			URI string `json:"uri"`
			OK  bool   `json:"ok"`
			Why string `json:"why"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) < 20 {
		t.Fatalf("only %d rows", len(table.Rows))
	}
	for _, r := range table.Rows {
		err := CheckRedirectURI(r.URI)
		if (err == nil) != r.OK {
			t.Errorf("CheckRedirectURI(%q) = %v, want ok=%v (%s)", r.URI, err, r.OK, r.Why)
		}
	}
}

func TestNew(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	c, secret, err := New(Spec{Name: "grafana", RedirectURIs: []string{"https://g.example.com/cb", "https://g.example.com/cb"}, RequireGroups: []string{"admins"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.IDTokenAlg != wire.AlgRS256 || c.Public || len(c.RedirectURIs) != 1 || len(c.ID) < 20 || len(secret) < 43 {
		t.Errorf("client %+v, secret %q", c, secret)
	}
	if !SecretMatches(c, secret) || SecretMatches(c, secret+"x") || SecretMatches(c, "") || strings.Contains(c.SecretHash, secret) {
		t.Error("secret check")
	}
	pub, secret, err := New(Spec{Name: "spa", Public: true, RedirectURIs: []string{"http://localhost:5173/cb"}, IDTokenAlg: "EdDSA"}, now)
	if err != nil || secret != "" || pub.SecretHash != "" || SecretMatches(pub, "") || pub.IDTokenAlg != "EdDSA" {
		t.Errorf("public client %+v, %q, %v", pub, secret, err)
	}
	// Every problem at once.
	_, _, err = New(Spec{Name: "Bad Name", RedirectURIs: []string{"http://evil.com/cb"}, IDTokenAlg: "HS256",
		BackchannelLogoutURI: "ftp://x", PostLogoutRedirectURIs: []string{"https://x/#f"}, RequireGroups: []string{"Admins!"}}, now)
	for _, want := range []string{"client name", "--redirect-uri", "--id-token-alg", "--backchannel-logout-uri", "--post-logout-redirect-uri", "--require-group"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if _, _, err := New(Spec{Name: "x"}, now); err == nil || !strings.Contains(err.Error(), "at least one --redirect-uri") {
		t.Errorf("no redirect URI: %v", err)
	}
}
