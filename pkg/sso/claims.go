package sso

// Claims are the claims of a Canopy access token, exactly as SPEC.md fixes them.
// The issuer mints this type and the verifier decodes into it, so both ends agree.
type Claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	Audience  string `json:"aud"`
	Expiry    int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	ID        string `json:"jti"`
	SessionID string `json:"sid"`
	Username  string `json:"preferred_username"`
	// Present once second factors and groups exist.
	AuthTime int64    `json:"auth_time,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}
