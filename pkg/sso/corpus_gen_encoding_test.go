package sso

import (
	"encoding/base64"
	"strings"
)

// Rows about the compact serialization itself (segments, base64url, size),
// and whole Cookie headers, for TestGenerateCorpus.

func (g *corpusGen) encodingRows() []corpusRow {
	valid := g.valid()
	h, p, s := splitSegments(g, valid)
	c := g.claims()
	var rows []corpusRow
	segs := []struct{ name, seg string }{{"header", h}, {"payload", p}, {"signature", s}}
	for _, ws := range []struct{ name, ch string }{{"newline", "\n"}, {"cr", "\r"}, {"tab", "\t"}, {"space", " "}} {
		for i, seg := range segs {
			parts := []string{h, p, s}
			parts[i] = seg.seg[:len(seg.seg)/2] + ws.ch + seg.seg[len(seg.seg)/2:]
			why := "Whitespace inside a segment: JWS base64url has none (RFC 7515 §2; SPEC.md: without padding or whitespace)."
			if ws.ch == "\n" || ws.ch == "\r" {
				why = "Base64url has no line breaks (RFC 7515 §2; SPEC.md), yet Go's base64 decoder, and so go-jose alone, skips them and accepts this token."
			}
			rows = append(rows, crow(ws.name+"-in-"+seg.name, strings.Join(parts, "."), "malformed", why))
		}
	}
	space := crow("space-after-token", valid+" ", "malformed",
		"A trailing space is not base64url; around a Bearer token, whitespace is HTTP syntax (RFC 9110 §5.5) and is trimmed, so there it is the valid token.")
	space.WantBearer = "accept"
	lead := crow("space-before-token", " "+valid, "malformed",
		"A leading space is not base64url; after \"Bearer\" any number of spaces is syntax (RFC 6750 §2.1), so there it is the valid token.")
	lead.WantBearer = "accept"
	dash, under := strings.IndexByte(valid, '-'), strings.IndexByte(valid, '_')
	if dash < 0 || under < 0 {
		g.t.Fatal("the valid token has no - or _ to swap; change its jti")
	}
	// A header whose JSON length is not a multiple of 3 has padding and
	// trailing bits to abuse; spaces inside the object keep it valid.
	padH := g.edHdr()
	for len(padH)%3 != 2 {
		padH = padH[:len(padH)-1] + " }"
	}
	padIn := rawB64s(padH) + "." + rawB64s(c)
	padSig := rawB64(corpusSign(g.t, g.k.ed, padIn))
	ph := rawB64s(padH) // ends in a character with 2 unused bits
	jwe := rawB64s(`{"alg":"dir","enc":"A256GCM","kid":"`+g.k.ed.KeyID+`"}`) + "..AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"
	const junk = "junk=0123456789abcdef0123456789; "
	flat := marshalCompact(g.t, map[string]string{"payload": p, "protected": h, "signature": s})
	general := `{"payload":"` + p + `","signatures":[{"protected":"` + h + `","signature":"` + s + `"}]}`
	return append(rows,
		space, lead,
		crow("crlf-at-end", valid+"\r\n", "malformed", "A trailing CRLF is not base64url (RFC 7515 §2), though go-jose alone skips it and accepts the token."),
		crow("nul-in-payload", h+"."+p[:10]+"\x00"+p[10:]+"."+s, "malformed", "A NUL byte is not base64url (SPEC.md)."),
		crow("non-ascii-in-payload", h+"."+p[:10]+"é"+p[10:]+"."+s, "malformed", "A non-ASCII character is not base64url (SPEC.md)."),
		crow("fullwidth-dots", h+"\uff0e"+p+"\uff0e"+s, "malformed", "U+FF0E FULLWIDTH FULL STOP is not the segment separator: one segment."),
		crow("standard-alphabet-plus", valid[:dash]+"+"+valid[dash+1:], "malformed",
			"+ for - is the standard base64 alphabet, not base64url (RFC 7515 §2; SPEC.md)."),
		crow("standard-alphabet-slash", valid[:under]+"/"+valid[under+1:], "malformed",
			"/ for _ is the standard base64 alphabet, not base64url (RFC 7515 §2; SPEC.md)."),
		crow("padding-signature", valid+"==", "malformed", "Base64url in JWS is unpadded (RFC 7515 §2; SPEC.md: without padding)."),
		crow("padding-header", base64.URLEncoding.EncodeToString([]byte(padH))+"."+rawB64s(c)+"."+padSig, "malformed",
			"A padded header segment (RFC 7515 §2; SPEC.md: without padding)."),
		crow("trailing-bits-signature", join3(h, p, flipLow(s)), "malformed",
			"Non-zero unused bits in the signature's last character: another text for the same bytes, which go-jose alone accepts (SPEC.md: canonical)."),
		crow("trailing-bits-header", flipLow(ph)+"."+rawB64s(c)+"."+padSig, "malformed",
			"Non-zero unused bits in the header's last character: not canonical, though go-jose alone accepts it (SPEC.md)."),
		crow("length-1-mod-4", valid+"AAA", "malformed", "A base64 text of length 1 mod 4 cannot be decoded (RFC 4648 §4)."),
		crow("two-segments", h+"."+p, "malformed", "A compact JWS has exactly three segments (RFC 7515 §7.1; SPEC.md)."),
		crow("four-segments-empty", valid+".", "malformed", "A fourth, empty segment (SPEC.md: exactly three segments)."),
		crow("four-segments", valid+".AAAA", "malformed", "A fourth segment (SPEC.md: exactly three segments)."),
		crow("five-segments-jwe", jwe, "malformed", "A JWE compact serialization is not a JWS (RFC 8725 §3.12)."),
		crow("empty-payload-segment", h+".."+s, "malformed", "An empty payload segment, as for detached content (RFC 7515 Appendix F), is refused."),
		crow("only-two-dots", "..", "malformed", "Three empty segments."),
		crow("jws-json-flattened", flat, "malformed", "The flattened JSON serialization is not accepted (RFC 7515 §7.2.2; SPEC.md: three segments)."),
		crow("jws-json-general", general, "malformed", "The general JSON serialization can carry several signatures; not accepted (RFC 7515 §7.2.1)."),
		crow("jws-json-leading-newline", "\n"+flat, "malformed", "The JSON serialization behind whitespace, which lenient parsers strip."),
		crow("bearer-prefix", "Bearer "+valid, "malformed", "A token value that still carries the auth scheme is not base64url."),
		crow("signed-8kib", g.sizedToken(8192), "malformed", "An 8 KiB token, validly signed, is twice the 4 KiB size cap: refused before any work (SPEC.md: size cap)."),
		crow("valid-at-size-cap", g.sizedToken(maxTokenSize), "accept", "A valid token of exactly 4096 bytes, the size cap."),
		crow("over-size-cap-by-one", g.sizedToken(maxTokenSize+1), "malformed", "A valid token of 4097 bytes, one over the size cap."),
		corpusRow{Name: "only-dots-5000", Build: &corpusBuild{Repeat: ".", Count: 5000}, Want: "malformed",
			Why: "5000 dots: the size cap and the segment count stop it before any split allocates."},
		corpusRow{Name: "valid-then-5000-dots", Build: &corpusBuild{Of: "valid-eddsa", Repeat: ".", Count: 5000}, Want: "malformed",
			Why: "The valid token followed by 5000 dots is over the size cap and has 5003 segments."},
		corpusRow{Name: "valid-then-64kib", Build: &corpusBuild{Of: "valid-eddsa", Repeat: "A", Count: 64 << 10}, Want: "malformed",
			Why: "64 KiB more of signature: far above the size cap (SPEC.md)."},
		corpusRow{Name: "garbage-1mib", Build: &corpusBuild{Repeat: "A", Count: 1 << 20}, Want: "malformed",
			Why: "1 MiB of base64url: refused on its length alone."},
		corpusRow{Name: "cookie-header-64kib-junk", As: "cookie-header", Build: &corpusBuild{Repeat: junk, Count: 64 << 10 / len(junk)},
			Want: "missing", Why: "A 64 KiB Cookie header of other cookies carries no access cookie: 401 (or 431 from the server), never 500."},
		corpusRow{Name: "cookie-header-64kib-access-cookies", As: "cookie-header", Build: &corpusBuild{Repeat: "canopy=x; ", Count: 64 << 10 / 10},
			Want: "malformed", Why: "Thousands of access cookies: at most eight are verified (cookies.go), each refused."},
		corpusRow{Name: "cookie-header-1mib-cookie", As: "cookie-header", Build: &corpusBuild{Prefix: "canopy=", Repeat: "A", Count: 1 << 20},
			Want: "malformed", Why: "One 1 MiB access cookie: over the token size cap; a server in front answers 431 first."},
	)
}

func splitSegments(g *corpusGen, tok string) (h, p, s string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		g.t.Fatalf("%q is not three segments", tok)
	}
	return parts[0], parts[1], parts[2]
}

func join3(h, p, s string) string { return h + "." + p + "." + s }

// flipLow sets the lowest bit of the last character of a segment whose
// length is not a multiple of 4: the bit lies beyond the data.
func flipLow(seg string) string {
	last := seg[len(seg)-1]
	return seg[:len(seg)-1] + string(alphabet[b64val[last]|1])
}

// sizedToken is a valid token of exactly n bytes: a padding claim fills it,
// and spaces in the header JSON make up for base64's steps of 4/3.
func (g *corpusGen) sizedToken(n int) string {
	for spaces := range 3 {
		h := g.edHdr()
		h = h[:len(h)-1] + strings.Repeat(" ", spaces) + "}"
		for pad := max(0, n*3/4-500); pad < n; pad++ {
			tok := g.ed(h, g.claims("pad", strings.Repeat("x", pad)))
			if len(tok) == n {
				return tok
			}
			if len(tok) > n {
				break
			}
		}
	}
	g.t.Fatalf("no token of exactly %d bytes", n)
	return ""
}
