package wire

// Paths of the issuer's endpoints that relying services and browsers use.
const (
	PathDiscovery  = "/.well-known/openid-configuration"
	PathJWKS       = "/.well-known/jwks.json"
	PathRevocation = "/sessions/revoked"
	// PathRevocationV2 serves RevocationFeed, with user-level entries.
	PathRevocationV2 = "/sessions/revocations"
	// PathRevocationStream pushes the second feed's entries as they commit
	// (Server-Sent Events; see stream.go).
	PathRevocationStream = "/sessions/revoked/stream"
	PathRefresh          = "/refresh"
	PathLogin            = "/login"
	PathLogout           = "/logout"
)

// Discovery is the issuer's /.well-known/openid-configuration, with the
// canopy_ fields SPEC.md adds.
type Discovery struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	Algorithms    []string `json:"id_token_signing_alg_values_supported"`
	CookieName    string   `json:"canopy_cookie_name"`
	CookieDomain  string   `json:"canopy_cookie_domain"`
	RevocationURI string   `json:"canopy_revocation_uri"`
	// RevocationV2URI serves RevocationFeed; a reader that knows it reads
	// it instead of RevocationURI, which stays for services deployed before.
	RevocationV2URI string `json:"canopy_revocation_v2_uri,omitempty"`
	// RevocationStreamURI pushes each revocation as it commits (Server-Sent
	// Events); a reader that knows it follows it and polls only while it is down.
	RevocationStreamURI string `json:"canopy_revocation_stream_uri,omitempty"`
	RefreshURI          string `json:"canopy_refresh_uri"`
	LoginURI            string `json:"canopy_login_uri"`
	LogoutURI           string `json:"canopy_logout_uri,omitempty"`
}

// NewDiscovery is the document an issuer at issuerURL (a bare origin)
// publishes, with every URL derived from it.
func NewDiscovery(issuerURL, cookieName, cookieDomain string) Discovery {
	return Discovery{
		Issuer: issuerURL, JWKSURI: issuerURL + PathJWKS, Algorithms: Algorithms(),
		CookieName: cookieName, CookieDomain: cookieDomain,
		RevocationURI: issuerURL + PathRevocation, RevocationV2URI: issuerURL + PathRevocationV2,
		RevocationStreamURI: issuerURL + PathRevocationStream, RefreshURI: issuerURL + PathRefresh,
		LoginURI: issuerURL + PathLogin, LogoutURI: issuerURL + PathLogout,
	}
}
