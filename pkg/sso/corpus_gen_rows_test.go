package sso

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Rows about algorithms, keys and signatures, and about the header, for
// TestGenerateCorpus. Each why names the rule; "SPEC.md" means the verifier
// section ("pkg: the verifier every relying service uses") unless it says otherwise.

func crow(name, token, want, why string) corpusRow {
	return corpusRow{Name: name, Token: token, Want: want, Why: why}
}

func (g *corpusGen) cryptoRows() []corpusRow {
	k, c := g.k, g.claims()
	edK, esK := k.ed.KeyID, k.es.KeyID
	edH, esH := g.edHdr(), g.esHdr()
	validES := g.signed(k.es, esH, c)
	n := elliptic.P256().Params().N
	r, s := splitRS(g, validES)
	edPub := k.ed.Public().Key.(ed25519.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(k.es.Public().Key)
	if err != nil {
		g.t.Fatal(err)
	}
	esPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	atkJWK := publicJWK(g.t, k.atkEd)
	noneH := corpusHdr("none", edK)
	const evil = "http://evil.localhost:8080/jwks.json"
	return []corpusRow{
		crow("valid-eddsa", g.valid(), "accept", "An EdDSA token exactly as the issuer mints it (SPEC.md, Access token)."),
		crow("valid-es256", validES, "accept", "An ES256 token exactly as the issuer mints it (SPEC.md, Access token)."),
		crow("valid-es256-high-s", withSig(esH, c, rsConcat(r, new(big.Int).Sub(n, s), 32)), "accept",
			"ECDSA is malleable, (r, n-s) verifies as well as (r, s); harmless because nothing but the verified-token cache keys on the token text."),
		crow("valid-jku-ignored", g.ed(`{"alg":"EdDSA","jku":"`+evil+`","kid":"`+edK+`","typ":"at+jwt"}`, c), "accept",
			"A jku header is ignored, never fetched, so a token the issuer's key signed is still good (SPEC.md: jwk, jku, x5u, x5c are ignored; RFC 8725 §3.10)."),
		crow("alg-none-empty-signature", rawB64s(noneH)+"."+rawB64s(c)+".", "malformed",
			"alg none with an empty signature segment fails the three non-empty segments check before alg is read (RFC 8725 §2.1)."),
		crow("alg-none-with-signature", g.ed(noneH, c), "signature",
			"alg none is never an allowed algorithm, even carrying the issuer's own signature (RFC 8725 §2.1, §3.1)."),
		crow("alg-none-capitalised", g.ed(corpusHdr("None", edK), c), "signature", "None is not none, and neither is allowed (RFC 8725 §3.1)."),
		crow("hs256-public-key-raw", hs256(corpusHdr("HS256", edK), c, edPub), "signature",
			"HS256 MAC'd with the issuer's raw Ed25519 public key: the key set, not the header, picks the algorithm (RFC 8725 §2.1, §3.1; SPEC.md)."),
		crow("hs256-public-key-jwk", hs256(corpusHdr("HS256", edK), c, []byte(publicJWK(g.t, k.ed))), "signature",
			"HS256 MAC'd with the issuer's published JWK text as the secret: symmetric algorithms are never allowed (RFC 8725 §3.1)."),
		crow("hs256-public-key-pem", hs256(corpusHdr("HS256", esK), c, esPEM), "signature",
			"HS256 MAC'd with the P-256 key's PEM, the classic RS/HS confusion (CVE-2015-9235): refused on alg alone (RFC 8725 §2.1)."),
		crow("rs256-not-allowed", g.signed(k.atkRSA, corpusHdr("RS256", edK), c), "signature",
			"RS256 is not one of EdDSA and ES256 (SPEC.md: alg naming a key in the key set with that algorithm)."),
		crow("es384-not-allowed", g.signed(k.atkP384, corpusHdr("ES384", esK), c), "signature", "ES384 is not an allowed algorithm (SPEC.md)."),
		crow("es256-lowercase", g.signed(k.es, corpusHdr("es256", esK), c), "signature",
			"Algorithm names are case-sensitive (RFC 7515 §4.1.1): es256 is not ES256, even when the issuer's key signed it."),
		crow("ed25519-alg-name", g.ed(corpusHdr("Ed25519", edK), c), "signature",
			"Ed25519, the fully specified JOSE name for EdDSA on Ed25519, is not the EdDSA the key set publishes; the key's alg must equal the header's."),
		crow("eddsa-signed-header-says-es256", g.ed(corpusHdr(wire.AlgES256, edK), c), "signature",
			"A header naming another algorithm than the key's is forged: the key decides the algorithm (RFC 8725 §3.1; SPEC.md)."),
		crow("es256-signed-header-says-eddsa", g.signed(k.es, corpusHdr(wire.AlgEdDSA, esK), c), "signature",
			"The ES256 key named with alg EdDSA: the key's alg is ES256, so the header is refused."),
		crow("es256-r-s-zero", withSig(esH, c, make([]byte, 64)), "signature",
			"r = s = 0, the psychic signature (CVE-2022-21449), fails ECDSA verification (RFC 8725 §3.3)."),
		crow("es256-r-s-n", withSig(esH, c, rsConcat(n, n, 32)), "signature",
			"r = s = n, the curve order, is outside [1, n-1] and fails ECDSA verification (RFC 8725 §3.3)."),
		crow("es256-der-signature", g.esDER(esH, c), "signature",
			"A DER-encoded ECDSA signature is not JWS's 64-byte R||S (RFC 7518 §3.4)."),
		crow("eddsa-s-plus-l", withSig(edH, c, edSPlusL(g, g.valid())), "signature",
			"An Ed25519 signature with S+L in place of S is non-canonical and refused (RFC 8032 §5.1.7: S must be below L)."),
		crow("eddsa-zero-signature", withSig(edH, c, make([]byte, 64)), "signature", "64 zero bytes are not a signature by the issuer's key."),
		crow("signature-65-bytes", g.valid()+"A", "signature", "One extra byte of signature (the segment stays canonical base64url) fails Ed25519 verification."),
		crow("signature-63-bytes", g.valid()[:len(g.valid())-2], "signature", "A signature one byte short fails Ed25519 verification."),
		crow("resigned-by-attacker-ed25519", g.signed(k.atkEd, edH, c), "signature",
			"The valid claims re-signed by a key that is not in the JWKS, under the issuer's kid."),
		crow("resigned-by-attacker-p256", g.signed(k.atkES, esH, c), "signature",
			"The valid claims re-signed with ES256 by a P-256 key that is not in the JWKS, under the issuer's kid."),
		crow("jwk-header-attacker-key", g.signed(k.atkEd, `{"alg":"EdDSA","jwk":`+atkJWK+`,"kid":"`+edK+`","typ":"at+jwt"}`, c), "signature",
			"The attacker's key embedded in a jwk header (CVE-2018-0114) is ignored; the issuer's key does not verify it (SPEC.md; RFC 8725 §3.10)."),
		crow("jwk-header-attacker-key-no-kid", g.signed(k.atkEd, `{"alg":"EdDSA","jwk":`+atkJWK+`,"typ":"at+jwt"}`, c), "malformed",
			"An embedded jwk and no kid: nothing names a key from the key set (SPEC.md: kid naming a key in the key set)."),
		crow("jku-header-attacker", g.signed(k.atkEd, `{"alg":"EdDSA","jku":"`+evil+`","kid":"`+edK+`","typ":"at+jwt"}`, c), "signature",
			"A jku pointing at the attacker's JWKS is never fetched (no SSRF, RFC 8725 §2.9, §3.10); the issuer's key does not verify it."),
		crow("jku-header-attacker-kid", g.signed(k.atkEd, `{"alg":"EdDSA","jku":"`+evil+`","kid":"attacker-ed25519","typ":"at+jwt"}`, c), "signature",
			"A jku with the attacker's own kid: the kid is unknown in the issuer's key set and jku is not followed."),
		crow("x5u-header-attacker", g.signed(k.atkEd, `{"alg":"EdDSA","kid":"`+edK+`","typ":"at+jwt","x5u":"http://evil.localhost:8080/cert.pem"}`, c), "signature",
			"An x5u is never fetched (RFC 8725 §2.9); the issuer's key does not verify the attacker's signature."),
		crow("x5c-header-attacker-cert", g.signed(k.atkEd, `{"alg":"EdDSA","kid":"`+edK+`","typ":"at+jwt","x5c":["`+g.attackerCert()+`"]}`, c), "signature",
			"An x5c chain with the attacker's self-signed certificate is ignored (SPEC.md: x5c ignored; RFC 8725 §3.10)."),
	}
}

// splitRS returns the r and s of an ES256 token's signature.
func splitRS(g *corpusGen, tok string) (r, s *big.Int) {
	sig, err := b64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	if err != nil || len(sig) != 64 {
		g.t.Fatalf("not an ES256 signature: %v", err)
	}
	return new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
}

// esDER signs with the issuer's P-256 key but keeps the ASN.1 DER encoding.
func (g *corpusGen) esDER(header, claims string) string {
	in := rawB64s(header) + "." + rawB64s(claims)
	d := sha256.Sum256([]byte(in))
	der, err := g.k.es.Key.(*ecdsa.PrivateKey).Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		g.t.Fatal(err)
	}
	return in + "." + rawB64(der)
}

// edSPlusL returns tok's Ed25519 signature with L added to S (little-endian).
func edSPlusL(g *corpusGen, tok string) []byte {
	sig, err := b64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	if err != nil || len(sig) != 64 {
		g.t.Fatal("not an Ed25519 signature")
	}
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(b []byte) []byte { out := bytes.Clone(b); slices.Reverse(out); return out }
	sPlusL := new(big.Int).Add(new(big.Int).SetBytes(le(sig[32:])), l)
	out := bytes.Clone(sig)
	copy(out[32:], le(sPlusL.FillBytes(make([]byte, 32))))
	return out
}

// attackerCert is a self-signed certificate for the attacker's Ed25519 key.
func (g *corpusGen) attackerCert() string {
	priv := g.k.atkEd.Key.(ed25519.PrivateKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "domain.localhost"},
		NotBefore: time.Unix(corpusIat-3600, 0).UTC(), NotAfter: time.Unix(corpusIat+86400, 0).UTC()}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		g.t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der) // x5c is standard base64 (RFC 7515 §4.1.6)
}

func (g *corpusGen) headerRows() []corpusRow {
	k, c := g.k, g.claims()
	edK := k.ed.KeyID
	var zipped bytes.Buffer
	zw, _ := flate.NewWriter(&zipped, flate.BestCompression)
	_, _ = zw.Write([]byte(c))
	_ = zw.Close()
	ed := func(header string) string { return g.ed(header, c) }
	swapped := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 32
		case 'A' <= r && r <= 'Z':
			return r + 32
		}
		return r
	}, edK)
	return []corpusRow{
		crow("valid-header-whitespace", ed(`{ "alg" : "EdDSA" ,`+"\n"+` "kid" : "`+edK+`" , "typ" : "at+jwt" }`), "accept",
			"Whitespace inside the header JSON is JSON, not base64: the segment is still canonical."),
		crow("valid-escaped-kid", ed(`{"alg":"EdDSA","kid":"`+jsonEscapeAll(edK)+`","typ":"at+jwt"}`), "accept",
			"A kid written with \\u escapes is the same string to every JSON parser, so it names the issuer's key."),
		crow("valid-escaped-alg-typ", ed(`{"alg":"\u0045dDSA","kid":"`+edK+`","typ":"at\u002bjwt"}`), "accept",
			"alg and typ written with \\u escapes decode to EdDSA and at+jwt, as go-jose also reads them."),
		crow("crit-exp", ed(`{"alg":"EdDSA","crit":["exp"],"exp":1,"kid":"`+edK+`","typ":"at+jwt"}`), "malformed",
			"crit names an extension nothing here understands, so the token must be refused (RFC 7515 §4.1.11; SPEC.md: no crit)."),
		crow("crit-b64-false", ed(`{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":"`+edK+`","typ":"at+jwt"}`), "malformed",
			"b64:false (RFC 7797) would change what the signature covers; crit is refused outright (SPEC.md)."),
		crow("b64-false-without-crit", ed(`{"alg":"EdDSA","b64":false,"kid":"`+edK+`","typ":"at+jwt"}`), "malformed",
			"b64 without crit is refused as well: go-jose honours b64, which would change what the signature covers."),
		crow("crit-empty", ed(`{"alg":"EdDSA","crit":[],"kid":"`+edK+`","typ":"at+jwt"}`), "malformed",
			"An empty crit list is invalid (RFC 7515 §4.1.11: producers must not use the empty list) and crit is refused (SPEC.md)."),
		crow("zip-deflate", g.ed(`{"alg":"EdDSA","kid":"`+edK+`","typ":"at+jwt","zip":"DEF"}`, zipped.String()), "malformed",
			"zip is JWE-only (RFC 7516 §4.1.3; RFC 8725 §3.6): the payload is never inflated, so DEFLATE bytes are not claims JSON."),
		crow("duplicate-alg", ed(`{"alg":"ES256","kid":"`+edK+`","typ":"at+jwt","alg":"EdDSA"}`), "malformed",
			"Duplicate header names mean different things to first-wins and last-wins parsers (RFC 7515 §4; SPEC.md: no duplicate keys)."),
		crow("duplicate-alg-escaped", ed(`{"alg":"EdDSA","kid":"`+edK+`","typ":"at+jwt","a\u006cg":"none"}`), "malformed",
			"\"a\\u006cg\" is alg again: duplicates are found after unescaping (SPEC.md: no duplicate keys)."),
		crow("duplicate-kid", ed(`{"alg":"EdDSA","kid":"attacker-ed25519","kid":"`+edK+`","typ":"at+jwt"}`), "malformed",
			"Two kids: which key a parser picks would depend on the parser (SPEC.md: no duplicate keys)."),
		crow("header-key-upper-case", ed(`{"ALG":"EdDSA","KID":"`+edK+`","TYP":"at+jwt"}`), "malformed",
			"JSON member names are case-sensitive: ALG is not alg, so there is no alg."),
		crow("header-bom", ed("\ufeff"+g.edHdr()), "malformed", "A byte-order mark before the header JSON is not JSON text (RFC 8259 §8.1; RFC 8725 §3.7)."),
		crow("header-null", ed(`null`), "malformed", "The header must be a JSON object (RFC 7515 §5.2)."),
		crow("typ-jwt", ed(`{"alg":"EdDSA","kid":"`+edK+`","typ":"JWT"}`), "claims",
			"typ JWT could be an ID token or any other JWT: explicit typing (RFC 8725 §3.11; RFC 9068 §4; SPEC.md: typ exactly at+jwt)."),
		crow("typ-at+JWT", ed(`{"alg":"EdDSA","kid":"`+edK+`","typ":"at+JWT"}`), "claims", "SPEC.md fixes typ as exactly at+jwt."),
		crow("typ-missing", ed(`{"alg":"EdDSA","kid":"`+edK+`"}`), "claims", "A token without typ is not an access token (RFC 8725 §3.11; SPEC.md)."),
		crow("typ-application-at+jwt", ed(`{"alg":"EdDSA","kid":"`+edK+`","typ":"application/at+jwt"}`), "claims",
			"RFC 7515 §4.1.9 lets application/ be omitted, but SPEC.md fixes typ exactly at+jwt and the issuer writes only that."),
		crow("typ-number", ed(`{"alg":"EdDSA","kid":"`+edK+`","typ":1}`), "claims", "typ must be the string at+jwt."),
		crow("kid-missing", ed(`{"alg":"EdDSA","typ":"at+jwt"}`), "malformed", "Without a kid no key of the key set is named (SPEC.md)."),
		crow("kid-empty", ed(corpusHdr(wire.AlgEdDSA, "")), "malformed", "An empty kid names no key (SPEC.md)."),
		crow("kid-number", ed(`{"alg":"EdDSA","kid":7,"typ":"at+jwt"}`), "malformed", "kid must be a string (RFC 7515 §4.1.4)."),
		crow("kid-unknown", ed(corpusHdr(wire.AlgEdDSA, "unknown-kid")), "signature", "A kid that is not in the key set, even after a refetch (SPEC.md)."),
		crow("kid-different-case", ed(corpusHdr(wire.AlgEdDSA, swapped)), "signature", "kids are compared exactly (RFC 7515 §4.1.4 calls kid case-sensitive)."),
		crow("kid-path-traversal", ed(corpusHdr(wire.AlgEdDSA, "../../../../etc/passwd")), "signature",
			"The kid is only a map key, never a path (RFC 8725 §2.9, §3.10)."),
		crow("kid-sql-injection", ed(corpusHdr(wire.AlgEdDSA, `' OR 1=1 --`)), "signature", "The kid is only a map key, never SQL (RFC 8725 §2.9, §3.10)."),
		crow("kid-unicode-homoglyph", ed(corpusHdr(wire.AlgEdDSA, "\u0415"+edK[1:])), "signature",
			"A kid with a Cyrillic letter in place of the first character is another kid: no Unicode folding."),
		crow("kid-with-nul", ed(corpusHdr(wire.AlgEdDSA, edK+`\u0000`)), "signature", "The issuer's kid followed by an escaped NUL is another kid."),
		crow("kid-oversized-header", ed(corpusHdr(wire.AlgEdDSA, strings.Repeat("k", 600))), "malformed",
			"A header over 512 bytes is refused before it is parsed (SPEC.md: size cap)."),
	}
}

// jsonEscapeAll writes every character of s as a \u escape.
func jsonEscapeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(`\u00`)
		b.WriteByte("0123456789abcdef"[r>>4])
		b.WriteByte("0123456789abcdef"[r&15])
	}
	return b.String()
}
