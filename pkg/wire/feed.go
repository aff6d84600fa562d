package wire

// RevokedEntry is one session ended early, in the issuer's revocation feed:
// its tokens are refused until Until (a Unix time, the latest exp of any
// token issued in it) plus the relying service's leeway.
type RevokedEntry struct {
	SID   string `json:"sid"`
	Until int64  `json:"until"`
}

// RevokedFeed is the body of GET /sessions/revoked.
type RevokedFeed struct {
	Revoked []RevokedEntry `json:"revoked"`
}
