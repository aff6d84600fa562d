package sso

import (
	"fmt"
	"strings"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

// Rows about the claims, for TestGenerateCorpus. Every token here carries the
// issuer's valid EdDSA signature: only the claims are wrong.

func (g *corpusGen) claimsRows() []corpusRow {
	now := int64(corpusNow)
	cl := func(kv ...any) string { return g.ed(g.edHdr(), g.claims(kv...)) }
	text := func(old, new string) string { return g.ed(g.edHdr(), g.claimsText(old, new)) }
	exp := fmt.Sprintf(`"exp":%d`, corpusExp)
	var many []any
	for i := range 60 {
		many = append(many, fmt.Sprintf("x%02d", i), i)
	}
	revoked := crow("sid-revoked", cl("sid", "s_revoked"), "revoked",
		"The token's sid is in the revocation feed (SPEC.md: sid not revoked; Revocation).")
	revoked.RevokedSIDs = []string{"s_revoked"}
	rows := []corpusRow{
		revoked,
		crow("valid-exp-at-leeway-edge", cl("iat", now-360, "nbf", now-360, "exp", now-30), "accept",
			"exp 30 s ago is inside the default 30 s leeway (SPEC.md: a small explicit leeway)."),
		crow("expired-beyond-leeway", cl("iat", now-360, "nbf", now-360, "exp", now-31), "expired",
			"exp 31 s ago is past the 30 s leeway (RFC 7519 §4.1.4)."),
		crow("valid-nbf-at-leeway-edge", cl("nbf", now+30), "accept", "nbf 30 s ahead is inside the leeway: clocks drift."),
		crow("nbf-in-future", cl("nbf", now+31), "claims", "nbf 31 s ahead is beyond the leeway (RFC 7519 §4.1.5)."),
		crow("iat-in-future", cl("iat", now+31, "exp", now+331), "claims",
			"A token issued 31 s in the future is beyond the leeway (SPEC.md: iat checked with a small leeway)."),
		crow("valid-exp-iat-at-max", cl("exp", corpusIat+3600), "accept", "exp - iat of exactly one hour is the default maximum (SPEC.md)."),
		crow("exp-iat-over-max", cl("exp", corpusIat+3601), "claims", "exp - iat over one hour: a token the issuer would not mint (SPEC.md)."),
		crow("exp-before-iat", cl("iat", now-10, "exp", now-11), "claims", "exp before iat is a contradiction, not a short token."),
		crow("valid-extra-claims", cl("amr", []string{"pwd"}, "groups", []string{"staff"}, "auth_time", corpusIat-60,
			"x-unknown", map[string]any{"a": []any{1, "b", nil}}), "accept",
			"auth_time, amr, groups and unknown claims of any shape are allowed (SPEC.md: Access token)."),
		crow("valid-deeply-nested-unknown-claim", text(`"sub":"u_alice"`, `"sub":"u_alice","x":`+strings.Repeat("[", 1000)+strings.Repeat("]", 1000)), "accept",
			"1000 levels of nesting in an ignored claim cost nothing beyond the size cap; unknown claims are ignored."),
	}
	for _, name := range []string{"exp", "iat", "nbf", "iss", "aud", "sub", "sid", "jti"} {
		rows = append(rows, crow("missing-"+name, cl(name, nil), "claims",
			fmt.Sprintf("%s is required (SPEC.md: Access token; RFC 8725 §3.8-3.9 for iss and aud).", name)))
	}
	return append(rows,
		crow("exp-string", cl("exp", fmt.Sprint(corpusExp)), "claims", "exp must be a JSON number, never a string (SPEC.md: integers)."),
		crow("exp-fraction", text(exp, exp+".5"), "claims", "exp 1900000300.5 is not an integer (SPEC.md: exp, iat, nbf integers)."),
		crow("exp-point-zero", text(exp, exp+".0"), "claims", "1900000300.0 is written as a fraction: refused rather than guessed."),
		crow("exp-exponent-huge", text(exp, `"exp":1e30`), "claims", "exp 1e30 is neither an integer literal nor a time (SPEC.md)."),
		crow("exp-negative", cl("exp", -1), "claims", "A negative exp is not a time the issuer writes."),
		crow("exp-year-5138", cl("exp", int64(99_999_999_999)), "claims", "exp beyond the year 2255 is refused so time arithmetic cannot overflow."),
		crow("exp-null", text(exp, `"exp":null`), "claims", "exp null is not a number (RFC 7519 §2 NumericDate)."),
		crow("exp-leading-zero", text(exp, `"exp":0`+exp[6:]), "malformed", "A leading zero is not JSON (RFC 8259 §6)."),
		crow("iat-string", cl("iat", fmt.Sprint(corpusIat)), "claims", "iat must be a number (SPEC.md)."),
		crow("nbf-boolean", cl("nbf", true), "claims", "nbf must be a number (SPEC.md)."),
		crow("duplicate-exp-last-valid", text(exp, `"exp":1899999000,`+exp), "malformed",
			"Duplicate exp, expired first and valid last, would pass a last-wins parser (RFC 7519 §4; SPEC.md: duplicate keys rejected)."),
		crow("duplicate-exp-first-valid", text(exp, exp+`,"exp":1899999000`), "malformed",
			"Duplicate exp, valid first and expired last, would pass a first-wins parser (SPEC.md: duplicate keys rejected)."),
		crow("duplicate-sub-escaped", text(`"sub":"u_alice"`, `"sub":"u_alice","\u0073ub":"u_admin"`), "malformed",
			"\"\\u0073ub\" is sub again: a second identity hidden from a byte-wise duplicate check."),
		crow("duplicate-iss", text(`"iss":`, `"iss":"http://evil.localhost:8080","iss":`), "malformed",
			"Two issuers in one token (SPEC.md: duplicate keys rejected)."),
		crow("claim-key-case", text(`"sub":`, `"SUB":`), "claims", "Claim names are case-sensitive: SUB is not sub, so sub is missing."),
		crow("aud-array-with-right-value", cl("aud", []string{ssotest.Audience}), "claims",
			"SPEC.md fixes aud as a string; an array is refused even when it holds the right value."),
		crow("aud-array-with-extra-value", cl("aud", []string{ssotest.Audience, "evil.localhost"}), "claims",
			"A token meant for several audiences is not a Canopy access token (SPEC.md: aud a string)."),
		crow("aud-number", cl("aud", 1), "claims", "aud must be a string."),
		crow("aud-wrong", cl("aud", "evil.localhost"), "claims", "aud must equal the cookie domain (RFC 8725 §3.9; SPEC.md)."),
		crow("aud-subdomain", cl("aud", "alice."+ssotest.Audience), "claims", "aud is the whole cookie domain, compared exactly, never as a suffix."),
		crow("aud-different-case", cl("aud", "Domain.localhost"), "claims", "aud is compared exactly, without case folding."),
		crow("iss-wrong", cl("iss", "http://evil.localhost:8080"), "claims", "iss must equal the issuer URL (RFC 8725 §3.8; SPEC.md)."),
		crow("iss-trailing-slash", cl("iss", ssotest.Issuer+"/"), "claims", "iss is compared exactly: a trailing slash is another issuer (RFC 7519 §2: StringOrURI values are compared without canonicalization)."),
		crow("iss-https", cl("iss", "https://domain.localhost:8080"), "claims", "Another scheme is another issuer."),
		crow("iss-number", cl("iss", 8080), "claims", "iss must be a string."),
		crow("sub-empty", cl("sub", ""), "claims", "An empty sub identifies nobody (SPEC.md: stable opaque user id)."),
		crow("sub-number", cl("sub", 7), "claims", "sub must be a string (SPEC.md)."),
		crow("sid-number", cl("sid", 1), "claims", "sid must be a string (SPEC.md)."),
		crow("username-number", cl("preferred_username", 1), "claims", "preferred_username must be a string."),
		crow("groups-not-array", cl("groups", "admin"), "claims", "groups is an array of strings (SPEC.md)."),
		crow("claims-empty-object", g.ed(g.edHdr(), `{}`), "claims", "No claims at all: exp and the rest are missing."),
		crow("claims-array", g.ed(g.edHdr(), `[1,2]`), "malformed", "The claims must be a JSON object (RFC 7519 §7.2)."),
		crow("claims-null", g.ed(g.edHdr(), `null`), "malformed", "The claims must be a JSON object."),
		crow("claims-json-string", g.ed(g.edHdr(), marshalCompact(g.t, g.claims())), "malformed", "Claims JSON inside a JSON string is a string, not an object."),
		crow("claims-trailing-data", g.ed(g.edHdr(), g.claims()+`{"sub":"u_admin"}`), "malformed", "Trailing data after the claims object is not one JSON value."),
		crow("claims-invalid-utf8", g.ed(g.edHdr(), g.claimsText("alice", "al\xffce")), "malformed",
			"Invalid UTF-8 would be replaced differently by different parsers (RFC 8725 §3.7)."),
		crow("claims-too-many-members", cl(many...), "malformed", "Over 48 claims is no token the issuer mints; the bound keeps the duplicate check cheap."),
	)
}
