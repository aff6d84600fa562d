package sso

import (
	"context"
	"encoding/base64"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

// verifierPair is the same configuration twice: the verifier as shipped
// (the standard library checks plain tokens' signatures) and its oracle,
// which checks every signature with go-jose. Both without a cache, so that
// every call is a cold verify.
type verifierPair struct{ std, jose *Verifier }

func newVerifierPair(t testing.TB, ks KeySet, cfg Config) verifierPair {
	t.Helper()
	cfg.CacheSize = -1
	std, err := NewVerifier(ks, cfg)
	if err != nil {
		t.Fatal(err)
	}
	oracle, err := NewVerifier(ks, cfg)
	if err != nil {
		t.Fatal(err)
	}
	oracle.joseOnly = true
	return verifierPair{std: std, jose: oracle}
}

// agree verifies token with both and fails the test on any difference:
// the verdict, the reason of a refusal, or the claims of an acceptance.
func (p verifierPair) agree(t testing.TB, what, token string) (accepted bool) {
	t.Helper()
	cs, errS := p.std.Verify(context.Background(), token)
	cj, errJ := p.jose.Verify(context.Background(), token)
	rs, rj := verdict(errS), verdict(errJ)
	if rs != rj || !reflect.DeepEqual(cs, cj) {
		t.Fatalf("%s: standard library %s (%v), go-jose %s (%v)\ntoken %q", what, rs, errS, rj, errJ, token)
	}
	return errS == nil
}

func verdict(err error) string {
	if err == nil {
		return "accept"
	}
	return Reason(err)
}

// TestDifferentialCorpus runs every corpus row through both checks.
func TestDifferentialCorpus(t *testing.T) {
	doc := loadCorpus(t)
	ks, _ := corpusKeySet(t)
	now := time.Unix(doc.Now, 0)
	accepted := 0
	for _, row := range doc.Rows {
		p := newVerifierPair(t, ks, Config{Issuer: doc.Issuer, Audience: doc.Audience,
			Now: func() time.Time { return now }, Revoked: ssotest.RevokedSet(sidSet(row.RevokedSIDs))})
		if p.agree(t, row.Name, row.Token) {
			accepted++
		}
	}
	if accepted == 0 {
		t.Fatal("no corpus row was accepted: the comparison never reached a good signature")
	}
}

// TestDifferentialRandom signs fresh random tokens with fresh keys and
// runs them, and mangled copies of their signatures, through both checks:
// bit flips, truncation, extension, and for ES256 r or s set to zero, to
// the group order N, above it, to N-1, and to the other half (high s),
// which go-jose and the standard library must judge alike.
func TestDifferentialRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	clk := ssotest.NewClock()
	rounds := 50 // × 2 algorithms × up to 17 signatures each; more with -count
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		ed, es := ssotest.NewEdKey(t, "ed-r"), ssotest.NewESKey(t, "es-r")
		ks, err := NewStaticKeySet(ed.JWK(), es.JWK())
		if err != nil {
			t.Fatal(err)
		}
		p := newVerifierPair(t, ks, Config{Issuer: ssotest.Issuer, Audience: ssotest.Audience, Now: clk.Now})
		for _, k := range []*ssotest.Key{ed, es} {
			claims := ssotest.With(ssotest.ValidClaims(), "sid", randText(rnd), "jti", randText(rnd))
			tok := k.Mint(t, claims)
			if !p.agree(t, "fresh "+k.Alg, tok) {
				t.Fatalf("round %d: a fresh %s token was refused", round, k.Alg)
			}
			dot := strings.LastIndexByte(tok, '.')
			input := tok[:dot]
			sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range mangled(rnd, k.Alg, sig) {
				p.agree(t, k.Alg+" mangled signature", input+"."+base64.RawURLEncoding.EncodeToString(bad))
			}
		}
	}
}

func randText(rnd *rand.Rand) string {
	b := make([]byte, 1+rnd.IntN(24))
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789_-"[rnd.IntN(38)]
	}
	return string(b)
}

// mangled returns variants of a good signature.
func mangled(rnd *rand.Rand, alg string, sig []byte) [][]byte {
	clone := func() []byte { return append([]byte(nil), sig...) }
	var out [][]byte
	flip := clone()
	flip[rnd.IntN(len(flip))] ^= 1 << rnd.IntN(8)
	out = append(out, flip, clone()[:len(sig)-1], append(clone(), 0), []byte{}, make([]byte, len(sig)))
	if alg != "ES256" {
		return out
	}
	n := p256Order
	put := func(half int, v *big.Int) []byte {
		s := clone()
		v.FillBytes(s[half*32 : half*32+32])
		return s
	}
	max := new(big.Int).Lsh(big.NewInt(1), 256)
	max.Sub(max, big.NewInt(1))
	for half := range 2 {
		out = append(out,
			put(half, new(big.Int)),                       // zero
			put(half, new(big.Int).Set(n)),                // N
			put(half, new(big.Int).Add(n, big.NewInt(1))), // above N
			put(half, new(big.Int).Set(max)),              // all ones
			put(half, new(big.Int).Sub(n, big.NewInt(1))), // N-1
		)
	}
	// The other s of the same signature (N - s): valid ECDSA, high or low.
	s := new(big.Int).SetBytes(sig[32:])
	out = append(out, put(1, new(big.Int).Sub(n, s)))
	// r + N still fits 32 bytes only when r < 2^256 - N: either way, refused.
	if r := new(big.Int).Add(new(big.Int).SetBytes(sig[:32]), n); r.BitLen() <= 256 {
		out = append(out, put(0, r))
	}
	return out
}
