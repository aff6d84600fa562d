package wire

// Paths of the issuer's OpenID Provider endpoints.
const (
	PathAuthorize  = "/authorize"
	PathToken      = "/token"
	PathUserinfo   = "/userinfo"
	PathEndSession = "/end-session"
)

// Scopes a client may ask for. ScopeOpenID is required; profile adds
// preferred_username, groups the user's groups.
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile"
	ScopeGroups  = "groups"
	// ScopeEmail adds email and email_verified when an upstream provider
	// verified the user's address (the account's first such link).
	ScopeEmail = "email"
	// ScopeOfflineAccess asks for a refresh token (OIDC Core §11).
	ScopeOfflineAccess = "offline_access"
)

// Authentication context classes a client may ask for with acr_values,
// each a rule on the session's amr; the ID token's acr names the one met.
const (
	// ACRPhishingResistant: signed in with a passkey (amr hwk).
	ACRPhishingResistant = "phr"
	// ACRMultiFactor: a second factor: a one-time code (otp), a passkey
	// (hwk, two factors in one) or several factors at an upstream provider
	// with trust-amr (mfa).
	ACRMultiFactor = "mfa"
)

// ACRValues lists the classes, strongest first.
func ACRValues() []string { return []string{ACRPhishingResistant, ACRMultiFactor} }

// ProviderDiscovery is /.well-known/openid-configuration as the issuer
// serves it: Canopy's own fields (Discovery, unchanged for relying services)
// plus the OpenID Provider metadata (OpenID Connect Discovery 1.0 §3, RFC
// 8414) that off-the-shelf OIDC clients read.
type ProviderDiscovery struct {
	Discovery
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	ACRValuesSupported                []string `json:"acr_values_supported"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	// OpenID Back-Channel Logout 1.0 §2.1: logout tokens carry sid.
	BackchannelLogoutSupported        bool `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool `json:"backchannel_logout_session_supported"`
}

// NewProviderDiscovery is NewDiscovery plus the provider metadata. Its
// id_token_signing_alg_values_supported lists the ID token algorithms
// (IDTokenAlgorithms, RS256 first): that field is about ID tokens, and no
// relying service reads it to choose access token algorithms.
func NewProviderDiscovery(issuerURL, cookieName, cookieDomain string) ProviderDiscovery {
	d := NewDiscovery(issuerURL, cookieName, cookieDomain)
	d.Algorithms = IDTokenAlgorithms()
	return ProviderDiscovery{
		Discovery:                         d,
		AuthorizationEndpoint:             issuerURL + PathAuthorize,
		TokenEndpoint:                     issuerURL + PathToken,
		UserinfoEndpoint:                  issuerURL + PathUserinfo,
		EndSessionEndpoint:                issuerURL + PathEndSession,
		ScopesSupported:                   []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeGroups, ScopeOfflineAccess},
		ClaimsSupported:                   []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "sid", "azp", "preferred_username", "email", "email_verified", "groups"},
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		SubjectTypesSupported:             []string{"public"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
		PromptValuesSupported:             []string{"none", "login"},
		ACRValuesSupported:                ACRValues(),
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
	}
}
