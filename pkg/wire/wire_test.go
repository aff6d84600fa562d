package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckGroupName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"staff", true},
		{"a", true},
		{"0day", true},
		{"eng-ops_2", true},
		{strings.Repeat("a", MaxGroupName), true},
		{"corp:eng", true},
		{"corp-2:eng_ops", true},
		{"", false},
		{strings.Repeat("a", MaxGroupName+1), false},
		{"Staff", false},
		{"-staff", false},
		{"_staff", false},
		{"st aff", false},
		{"staff,ops", false},
		{"staff\n", false},
		{"ståff", false},
		{":eng", false},
		{"corp:", false},
		{"corp:eng:ops", false},
		{"Corp:eng", false},
		{"corp:-eng", false},
		{"corp/eng", false},
		{strings.Repeat("a", MaxGroupName+1) + ":eng", false},
	} {
		err := CheckGroupName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckGroupName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if p, ns := Namespaced(tc.name); tc.ok && ns != strings.Contains(tc.name, ":") {
			t.Errorf("Namespaced(%q) = %q, %v", tc.name, p, ns)
		}
	}
}

// TestDiscoveryFields pins the discovery document's field names: relying
// services deployed today read them.
func TestDiscoveryFields(t *testing.T) {
	m, b := asFields(t, NewDiscovery("https://domain.example", "__Secure-canopy", "domain.example"))
	want := map[string]any{
		"issuer":                                "https://domain.example",
		"jwks_uri":                              "https://domain.example/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []any{"EdDSA", "ES256"},
		"canopy_cookie_name":                    "__Secure-canopy",
		"canopy_cookie_domain":                  "domain.example",
		"canopy_revocation_uri":                 "https://domain.example/sessions/revoked",
		"canopy_revocation_v2_uri":              "https://domain.example/sessions/revocations",
		"canopy_revocation_stream_uri":          "https://domain.example/sessions/revoked/stream",
		"canopy_refresh_uri":                    "https://domain.example/refresh",
		"canopy_login_uri":                      "https://domain.example/login",
		"canopy_logout_uri":                     "https://domain.example/logout",
	}
	if len(m) != len(want) {
		t.Errorf("discovery has %d fields, want %d: %s", len(m), len(want), b)
	}
	checkFields(t, m, want)
}

func TestAlgorithmsAndMethods(t *testing.T) {
	for _, a := range Algorithms() {
		if !ValidAlgorithm(a) {
			t.Errorf("ValidAlgorithm(%q) = false", a)
		}
	}
	for _, a := range []string{"", "none", "HS256", "RS256", "eddsa", "es256", "Ed25519"} {
		if ValidAlgorithm(a) {
			t.Errorf("ValidAlgorithm(%q) = true", a)
		}
	}
	for _, m := range []string{AMRPassword, AMROTP, AMRHardware, AMRFederated, AMRMultiFactor} {
		if !ValidAMR(m) {
			t.Errorf("ValidAMR(%q) = false", m)
		}
		if !strings.Contains(AMRMethods(), m+" (") {
			t.Errorf("AMRMethods() = %q does not list %q", AMRMethods(), m)
		}
	}
	for _, m := range []string{"", "MFA", "PWD", "sms", "fed ", "face"} {
		if ValidAMR(m) {
			t.Errorf("ValidAMR(%q) = true", m)
		}
	}
}

// TestProviderDiscoveryFields: the provider document keeps every canopy_
// field and adds the OpenID Provider metadata clients read.
func TestProviderDiscoveryFields(t *testing.T) {
	m, b := asFields(t, NewProviderDiscovery("https://domain.example", "__Secure-canopy", "domain.example"))
	want := map[string]any{
		"issuer":                                "https://domain.example",
		"jwks_uri":                              "https://domain.example/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []any{"RS256", "ES256", "EdDSA"},
		"canopy_cookie_name":                    "__Secure-canopy",
		"canopy_cookie_domain":                  "domain.example",
		"canopy_revocation_uri":                 "https://domain.example/sessions/revoked",
		"canopy_revocation_v2_uri":              "https://domain.example/sessions/revocations",
		"canopy_revocation_stream_uri":          "https://domain.example/sessions/revoked/stream",
		"canopy_refresh_uri":                    "https://domain.example/refresh",
		"canopy_login_uri":                      "https://domain.example/login",
		"canopy_logout_uri":                     "https://domain.example/logout",
		"authorization_endpoint":                "https://domain.example/authorize",
		"token_endpoint":                        "https://domain.example/token",
		"userinfo_endpoint":                     "https://domain.example/userinfo",
		"end_session_endpoint":                  "https://domain.example/end-session",
		"scopes_supported":                      []any{"openid", "profile", "email", "groups", "offline_access"},
		"response_types_supported":              []any{"code"},
		"response_modes_supported":              []any{"query"},
		"grant_types_supported":                 []any{"authorization_code", "refresh_token"},
		"subject_types_supported":               []any{"public"},
		"code_challenge_methods_supported":      []any{"S256"},
		"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post", "none"},
		"prompt_values_supported":               []any{"none", "login"},
		"acr_values_supported":                  []any{"phr", "mfa"},
		"claims_parameter_supported":            false,
		"request_parameter_supported":           false,
		"request_uri_parameter_supported":       false,
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	}
	checkFields(t, m, want)
	if claims, _ := m["claims_supported"].([]any); len(claims) < 8 {
		t.Errorf("claims_supported = %v", m["claims_supported"])
	}
	if len(m) != len(want)+1 {
		t.Errorf("discovery has %d fields, want %d: %s", len(m), len(want)+1, b)
	}
}

// asFields is a document's JSON as a field map, and the JSON itself.
func asFields(t *testing.T, doc any) (map[string]any, []byte) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, b
}

// checkFields reports each field of want that m lacks or holds otherwise.
func checkFields(t *testing.T, m, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, _ := json.Marshal(m[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("%s = %s, want %s", k, got, exp)
		}
	}
}
