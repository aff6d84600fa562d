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

// ClaimIssuedAt is the claim a user-level revocation compares: every token
// of the user whose iat is before Before is refused.
const ClaimIssuedAt = "iat"

// Revocation is one entry of the second revocation feed (GET
// /sessions/revocations, discovery's canopy_revocation_v2_uri). It is one of
// two kinds, and a reader refuses an entry that is neither:
//
//   - a session: SID set, the other fields but Until empty. Every token whose
//     sid is SID is refused (logout, signing out one session, refresh-token
//     reuse).
//   - a user: Subject, Claim and Before set, SID empty. Every token whose sub
//     is Subject and whose Claim (today always "iat") is before Before is
//     refused, except tokens whose sid is ExceptSID when that is set (the
//     session that made the change). It stands for every session the user
//     had when they were disabled, deleted, changed their password or signed
//     out everywhere or elsewhere: one entry, however many sessions. A
//     session started later has a later iat and is not touched.
//
// Either kind holds until Until (Unix seconds, the latest exp of any token
// it covers) plus the relying service's leeway. A reader that meets a Claim
// it does not know cannot apply the entry and must say so (not ready) rather
// than skip it.
type Revocation struct {
	SID       string `json:"sid,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Claim     string `json:"claim,omitempty"`
	Before    int64  `json:"before,omitempty"`
	ExceptSID string `json:"except_sid,omitempty"`
	Until     int64  `json:"until"`
}

// IsUser reports whether r is a user-level entry (see Revocation).
func (r Revocation) IsUser() bool { return r.SID == "" }

// RevocationFeed is the body of GET /sessions/revocations: every entry whose
// Until is later than ten minutes ago, the whole window, with an ETag and a
// Cursor.
//
// With ?after=CURSOR (QueryAfter) it is incremental instead: only the
// entries committed after CURSOR, in commit order, at most a page of them
// (More set when there are more: ask again with the new Cursor), and no
// ETag. Cursor is the position of the last entry served (of the last commit
// the whole window includes); positions follow commit order on every
// instance, so a reader that passes back the last Cursor it got misses
// nothing. An unknown cursor (ahead of the issuer's log: another database)
// is answered 410 Gone: the reader reads the whole window again.
//
// The issuer bounds the feed to a fixed number of entries. Past it, it first
// merges each user's entries into one with the latest Before and Until and no
// ExceptSID (so the sessions that made a change are signed out too: more is
// revoked, never less); if that is still too many it serves the newest
// entries with Overflow set. A reader that sees Overflow applies what it got
// and reports itself not ready: the feed never fails open silently.
type RevocationFeed struct {
	Revocations []Revocation `json:"revocations"`
	Overflow    bool         `json:"overflow,omitempty"`
	Cursor      string       `json:"cursor,omitempty"`
	More        bool         `json:"more,omitempty"`
}

// QueryAfter is the query parameter of an incremental read of the feed.
const QueryAfter = "after"
