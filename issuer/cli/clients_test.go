package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/issuer/clients"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
)

// TestClientCommands walks `issuer client` in order, then checks that the
// printed secret is the stored one and that rotation replaces it.
func TestClientCommands(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys")}
	steps := []struct {
		name    string
		args    []string
		code    int
		out     string
		errText string
	}{
		{"add confidential", []string{"client", "add", "grafana", "--redirect-uri", "https://grafana.example.com/login/generic_oauth",
			"--redirect-uri", "http://localhost:3000/cb", "--require-group", "admins", "--post-logout-redirect-uri", "https://grafana.example.com/"}, ExitOK, `"client_secret":"`, ""},
		{"add public, flags first", []string{"--public", "--id-token-alg", "EdDSA", "client", "add", "spa", "--redirect-uri", "http://127.0.0.1:5173/cb"}, ExitOK, `"client_id":"`, ""},
		{"name taken", []string{"client", "add", "grafana", "--redirect-uri", "https://x.example.com/cb"}, ExitFailure, "", "exists already"},
		{"no redirect URI", []string{"client", "add", "x"}, ExitUsage, "", "at least one --redirect-uri"},
		{"http off loopback", []string{"client", "add", "x", "--redirect-uri", "http://x.example.com/cb"}, ExitUsage, "", "must be https"},
		{"fragment", []string{"client", "add", "x", "--redirect-uri", "https://x.example.com/cb#a"}, ExitUsage, "", "fragment"},
		{"bad alg", []string{"client", "add", "x", "--redirect-uri", "https://x.example.com/cb", "--id-token-alg", "HS256"}, ExitUsage, "", "--id-token-alg"},
		{"add flags elsewhere", []string{"client", "list", "--public"}, ExitUsage, "", "takes no client add flags"},
		{"remove unknown", []string{"client", "remove", "nope"}, ExitFailure, "", "no client named nope"},
		{"rotate public", []string{"client", "rotate-secret", "spa"}, ExitFailure, "", "public"},
		{"unknown command", []string{"client", "rename", "a"}, ExitUsage, "", "unknown client command"},
		{"help", []string{"client", "--help"}, ExitOK, "rotate-secret", ""},
	}
	var grafana struct{ ID, Secret string }
	for _, st := range steps {
		code, out, errOut := run(t, "", append(st.args, flags...)...)
		if code != st.code || !strings.Contains(out, st.out) || !strings.Contains(errOut, st.errText) {
			t.Fatalf("%s: exit %d, want %d\nstdout: %q (want %q)\nstderr: %q (want %q)", st.name, code, st.code, out, st.out, errOut, st.errText)
		}
		if st.name == "add confidential" {
			var v struct {
				ID     string `json:"client_id"`
				Secret string `json:"client_secret"`
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID == "" || len(v.Secret) < 43 {
				t.Fatalf("add printed %q: %v", out, err)
			}
			grafana.ID, grafana.Secret = v.ID, v.Secret
		}
		if st.name == "add public, flags first" && strings.Contains(out, "client_secret") {
			t.Errorf("a public client got a secret: %s", out)
		}
	}
	s := openTestStore(t, filepath.Join(dir, "db"))
	c, err := s.ClientByID(t.Context(), grafana.ID)
	if err != nil || !clients.SecretMatches(c, grafana.Secret) || strings.Contains(c.SecretHash, grafana.Secret) ||
		len(c.RedirectURIs) != 2 || len(c.RequireGroups) != 1 || c.IDTokenAlg != "RS256" {
		t.Fatalf("stored client %+v, %v", c, err)
	}
	code, out, _ := run(t, "", append([]string{"client", "list"}, flags...)...)
	if code != ExitOK || !strings.Contains(out, "grafana") || !strings.Contains(out, "spa") || !strings.Contains(out, "public") || strings.Contains(out, grafana.Secret) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = run(t, "", append([]string{"client", "rotate-secret", "grafana"}, flags...)...)
	var rotated struct {
		Secret string `json:"client_secret"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &rotated) != nil || rotated.Secret == grafana.Secret {
		t.Fatalf("rotate-secret: %d %s", code, out)
	}
	c, _ = s.ClientByID(t.Context(), grafana.ID)
	if clients.SecretMatches(c, grafana.Secret) || !clients.SecretMatches(c, rotated.Secret) {
		t.Error("rotate-secret did not replace the secret")
	}
	if code, _, errOut := run(t, "", append([]string{"client", "remove", grafana.ID}, flags...)...); code != ExitOK {
		t.Fatalf("remove by id: %d %s", code, errOut)
	}
	if _, err := s.ClientByID(t.Context(), grafana.ID); err == nil {
		t.Error("client still there after remove")
	}
}

func openTestStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
