package sso

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// The hostile-token corpus (testdata/tokens) is data; this generator is how it
// was made. Run it after changing a row:
//
//	go test ./pkg/sso -run TestGenerateCorpus -update-corpus
//
// It reuses the committed keys (private.json), and every signature it makes is
// deterministic (Ed25519, RFC 6979 ECDSA, PKCS #1 v1.5, HMAC), so an unchanged
// row regenerates byte for byte.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/tokens from the generator")

const (
	corpusIat = 1_900_000_000
	corpusNow = corpusIat + 60 // the verifying clock
	corpusExp = corpusIat + 300
)

// genKeys are the corpus's private keys: the issuer's two, which keys.json
// publishes, and the attacker's, which nothing trusts.
type genKeys struct {
	ed, es                        *jose.JSONWebKey
	atkEd, atkES, atkP384, atkRSA *jose.JSONWebKey
}

// corpusKID is a kid shaped like the issuer's (22 base64url characters),
// fixed so that the corpus does not change when regenerated.
func corpusKID(label string) string {
	sum := sha256.Sum256([]byte("canopy corpus " + label))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// corpusSeed derives fixed key material, so a lost private.json can be remade
// (except the RSA key, which Go cannot derive from a seed).
func corpusSeed(label string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "canopy corpus key %s %d", label, i))
		out = append(out, sum[:]...)
	}
	return out[:n]
}

func loadOrMakeKeys(t *testing.T) *genKeys {
	path := filepath.Join(corpusDir, "private.json")
	var set jose.JSONWebKeySet
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &set); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	} else {
		set = makeKeys(t)
	}
	byKID := map[string]*jose.JSONWebKey{}
	for i := range set.Keys {
		byKID[set.Keys[i].KeyID] = &set.Keys[i]
	}
	k := &genKeys{
		ed: byKID[corpusKID("issuer-ed25519")], es: byKID[corpusKID("issuer-p256")],
		atkEd: byKID["attacker-ed25519"], atkES: byKID["attacker-p256"],
		atkP384: byKID["attacker-p384"], atkRSA: byKID["attacker-rsa"],
	}
	for _, key := range []*jose.JSONWebKey{k.ed, k.es, k.atkEd, k.atkES, k.atkP384, k.atkRSA} {
		if key == nil {
			t.Fatalf("%s lacks a key; delete it to make new keys", path)
		}
	}
	return k
}

func makeKeys(t *testing.T) jose.JSONWebKeySet {
	ecKey := func(label string, c elliptic.Curve, n int) *ecdsa.PrivateKey {
		k, err := ecdsa.ParseRawPrivateKey(c, corpusSeed(label, n))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: ed25519.NewKeyFromSeed(corpusSeed("issuer-ed25519", 32)), KeyID: corpusKID("issuer-ed25519"), Algorithm: wire.AlgEdDSA, Use: "sig"},
		{Key: ecKey("issuer-p256", elliptic.P256(), 32), KeyID: corpusKID("issuer-p256"), Algorithm: wire.AlgES256, Use: "sig"},
		{Key: ed25519.NewKeyFromSeed(corpusSeed("attacker-ed25519", 32)), KeyID: "attacker-ed25519", Algorithm: wire.AlgEdDSA, Use: "sig"},
		{Key: ecKey("attacker-p256", elliptic.P256(), 32), KeyID: "attacker-p256", Algorithm: wire.AlgES256, Use: "sig"},
		{Key: ecKey("attacker-p384", elliptic.P384(), 48), KeyID: "attacker-p384", Algorithm: "ES384", Use: "sig"},
		{Key: rsaKey, KeyID: "attacker-rsa", Algorithm: "RS256", Use: "sig"},
	}}
}

// corpusSign returns key's signature over input in JWS form: Ed25519, R||S for
// ECDSA (RFC 7518 §3.4), PKCS #1 v1.5 for RSA.
func corpusSign(t *testing.T, key *jose.JSONWebKey, input string) []byte {
	switch priv := key.Key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, []byte(input))
	case *ecdsa.PrivateKey:
		h, size := crypto.SHA256, 32
		if priv.Curve == elliptic.P384() {
			h, size = crypto.SHA384, 48
		}
		d := h.New()
		d.Write([]byte(input))
		der, err := priv.Sign(nil, d.Sum(nil), h) // nil: RFC 6979, deterministic
		if err != nil {
			t.Fatal(err)
		}
		r, s := derToRS(t, der)
		return rsConcat(r, s, size)
	case *rsa.PrivateKey:
		d := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("key type %T", key.Key)
	return nil
}

func derToRS(t *testing.T, der []byte) (r, s *big.Int) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		t.Fatal(err)
	}
	return sig.R, sig.S
}

func rsConcat(r, s *big.Int, size int) []byte {
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out
}

// corpusGen builds tokens for the rows.
type corpusGen struct {
	t *testing.T
	k *genKeys
}

func rawB64(b []byte) string  { return base64.RawURLEncoding.EncodeToString(b) }
func rawB64s(s string) string { return rawB64([]byte(s)) }

// signed is header.claims signed by key, whatever the header says.
func (g *corpusGen) signed(key *jose.JSONWebKey, header, claims string) string {
	in := rawB64s(header) + "." + rawB64s(claims)
	return in + "." + rawB64(corpusSign(g.t, key, in))
}

// withSig is header.claims with the given signature bytes.
func withSig(header, claims string, sig []byte) string {
	return rawB64s(header) + "." + rawB64s(claims) + "." + rawB64(sig)
}

// hs256 is header.claims MAC'd with HS256 under secret.
func hs256(header, claims string, secret []byte) string {
	in := rawB64s(header) + "." + rawB64s(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + rawB64(m.Sum(nil))
}

// corpusHdr is the header a Canopy issuer writes for alg and kid.
func corpusHdr(alg, kid string) string {
	return `{"alg":"` + alg + `","kid":"` + kid + `","typ":"at+jwt"}`
}

func (g *corpusGen) edHdr() string { return corpusHdr(wire.AlgEdDSA, g.k.ed.KeyID) }
func (g *corpusGen) esHdr() string { return corpusHdr(wire.AlgES256, g.k.es.KeyID) }

// claims are the issuer's claims at corpusIat, changed by kv pairs (a nil
// value deletes the claim).
func (g *corpusGen) claims(kv ...any) string {
	c := map[string]any{
		"iss": ssotest.Issuer, "aud": ssotest.Audience, "sub": "u_alice", "sid": "s_alice",
		"jti": "j_corpus_0000000001", "preferred_username": "alice",
		"iat": corpusIat, "nbf": corpusIat, "exp": corpusExp,
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return marshalCompact(g.t, c)
}

// claimsText is the default claims with one literal text replaced, for JSON
// no encoder writes (1e30, duplicates, leading zeros).
func (g *corpusGen) claimsText(old, new string) string {
	c := g.claims()
	if !strings.Contains(c, old) {
		g.t.Fatalf("claims %s lack %s", c, old)
	}
	return strings.Replace(c, old, new, 1)
}

func (g *corpusGen) ed(header, claims string) string { return g.signed(g.k.ed, header, claims) }
func (g *corpusGen) valid() string                   { return g.ed(g.edHdr(), g.claims()) }

func marshalCompact(t *testing.T, v any) string {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func publicJWK(t *testing.T, k *jose.JSONWebKey) string {
	pub := k.Public()
	b, err := pub.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGenerateCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/tokens")
	}
	k := loadOrMakeKeys(t)
	g := &corpusGen{t: t, k: k}
	var rows []corpusRow
	for _, part := range [][]corpusRow{g.cryptoRows(), g.headerRows(), g.claimsRows(), g.encodingRows()} {
		rows = append(rows, part...)
	}
	priv := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{*k.ed, *k.es, *k.atkEd, *k.atkES, *k.atkP384, *k.atkRSA}}
	pub := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.ed.Public(), k.es.Public()}}
	doc := corpusFile{
		Comment: "Hostile access tokens for pkg/sso and the relying middleware; generated by " +
			"pkg/sso/corpus_gen_test.go (go test ./pkg/sso -run TestGenerateCorpus -update-corpus). " +
			"Verify each row with keys.json, the issuer and audience below and the clock at now; " +
			"want is accept or sso.Reason(err).",
		Issuer: ssotest.Issuer, Audience: ssotest.Audience, Now: corpusNow, Leeway: "30s", Rows: rows,
	}
	writeCorpusFile(t, "private.json", marshalIndent(t, priv))
	writeCorpusFile(t, "keys.json", marshalIndent(t, pub))
	writeCorpusFile(t, "corpus.json", encodeCorpus(t, doc))
	// Reading it back must give the same tokens (JSON cannot carry invalid UTF-8).
	back := loadCorpus(t)
	for i, r := range back.Rows {
		if rows[i].Build == nil && r.Token != rows[i].Token {
			t.Fatalf("row %s does not survive JSON", r.Name)
		}
	}
	writeSeeds(t, back)
}

func marshalIndent(t *testing.T, v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// encodeCorpus writes one row a line, so a diff shows which rows changed.
func encodeCorpus(t *testing.T, doc corpusFile) []byte {
	rows := doc.Rows
	doc.Rows = nil
	head := marshalIndent(t, doc)
	head = bytes.TrimSuffix(head, []byte("\n}\n"))
	var b bytes.Buffer
	b.Write(head)
	b.WriteString(",\n  \"rows\": [\n")
	for i, r := range rows {
		b.WriteString("    " + marshalCompact(t, r))
		if i < len(rows)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}

func writeCorpusFile(t *testing.T, name string, data []byte) {
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corpusDir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSeeds adds the literal corpus tokens to FuzzVerify's seed corpus. The
// fuzz verifier does not know the corpus keys, so these seeds exercise the
// checks before the key lookup; the seeds named valid-* are its own.
func writeSeeds(t *testing.T, doc *corpusFile) {
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	for _, r := range doc.Rows {
		if r.Build != nil || r.As != "" || len(r.Token) > maxTokenSize {
			continue
		}
		data := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", r.Token)
		if err := os.WriteFile(filepath.Join(dir, "corpus-"+r.Name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
