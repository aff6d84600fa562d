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
	// SessionExpiry is when the token's session ends (--session-ttl after
	// sign-in): no token of the session expires later, and a relying
	// service closes the session's long-lived connections then.
	SessionExpiry int64 `json:"session_exp,omitempty"`
	// IDP names the upstream OpenID provider the session signed in at
	// (its --idp name); empty for a sign-in at the issuer itself.
	IDP string `json:"idp,omitempty"`
}

// parseClaims decodes the claims strictly: no duplicate keys, each known
// claim of its one JSON type (times are integers, aud is a string and never
// an array), exp, iat and nbf present. Unknown claims are ignored.
func (v *Verifier) parseClaims(data []byte) (*Claims, error) {
	var s objectScanner
	if err := s.init(data); err != nil {
		return nil, errorf(ErrMalformed, "claims: %v", err)
	}
	c := new(Claims)
	var have struct{ exp, iat, nbf bool }
	for {
		key, val, ok, err := s.next()
		if err != nil {
			return nil, errorf(ErrMalformed, "claims: %v", err)
		}
		if !ok {
			break
		}
		switch string(key) {
		case "iss":
			err = v.readKnown(val, v.issuer, &c.Issuer)
		case "aud":
			err = v.readKnown(val, v.audience, &c.Audience)
		case "sub":
			c.Subject, err = jsonString(val)
		case "jti":
			c.ID, err = jsonString(val)
		case "sid":
			c.SessionID, err = jsonString(val)
		case "preferred_username":
			c.Username, err = jsonString(val)
		case "exp":
			c.Expiry, err = jsonNumericDate(val)
			have.exp = true
		case "iat":
			c.IssuedAt, err = jsonNumericDate(val)
			have.iat = true
		case "nbf":
			c.NotBefore, err = jsonNumericDate(val)
			have.nbf = true
		case "auth_time":
			c.AuthTime, err = jsonNumericDate(val)
		case "amr":
			c.AMR, err = jsonStrings(val)
		case "groups":
			c.Groups, err = jsonStrings(val)
		case "session_exp":
			c.SessionExpiry, err = jsonNumericDate(val)
		case "idp":
			c.IDP, err = jsonString(val)
		}
		if err != nil {
			return nil, errorf(ErrClaims, "claim %q: %s is not of its type", key, truncate(val, 40))
		}
	}
	switch {
	case !have.exp:
		return nil, errorf(ErrClaims, "exp is missing")
	case !have.iat:
		return nil, errorf(ErrClaims, "iat is missing")
	case !have.nbf:
		return nil, errorf(ErrClaims, "nbf is missing")
	}
	return c, nil
}

// readKnown reads a string claim that must equal want, reusing want's memory
// when it does (iss and aud are the same in every token).
func (v *Verifier) readKnown(raw []byte, want string, dst *string) error {
	if jsonStringIs(raw, want) {
		*dst = want
		return nil
	}
	s, err := jsonString(raw)
	*dst = s
	return err
}

// truncate shortens a claim for an error message.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
