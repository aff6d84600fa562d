package sso

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

// The verifier's cost is measured against the bare signature check of the
// same signing input: cold Verify should stay within 1.25× of it, and a
// cache hit under a microsecond with at most two allocations.

func benchSetup(b testing.TB, k *ssotest.Key, cacheSize int) (*Verifier, string) {
	ks, err := NewStaticKeySet(k.JWK())
	if err != nil {
		b.Fatal(err)
	}
	v := newTestVerifier(b, ks, ssotest.NewClock(), func(c *Config) { c.CacheSize = cacheSize })
	tok := k.Mint(b, ssotest.ValidClaims())
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	return v, tok
}

func benchVerify(b *testing.B, k *ssotest.Key, cacheSize int) {
	v, tok := benchSetup(b, k, cacheSize)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyColdEdDSA(b *testing.B) { benchVerify(b, ssotest.NewEdKey(b, "ed"), -1) }
func BenchmarkVerifyColdES256(b *testing.B) { benchVerify(b, ssotest.NewESKey(b, "es"), -1) }
func BenchmarkVerifyWarm(b *testing.B)      { benchVerify(b, ssotest.NewEdKey(b, "ed"), 0) }

func BenchmarkVerifyWarmParallel(b *testing.B) {
	v, tok := benchSetup(b, ssotest.NewEdKey(b, "ed"), 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// rawParts returns a token's signing input and decoded signature.
func rawParts(b testing.TB, tok string) (string, []byte) {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	return tok[:i], sig
}

func BenchmarkRawEd25519(b *testing.B) {
	k := ssotest.NewEdKey(b, "ed")
	input, sig := rawParts(b, k.Mint(b, ssotest.ValidClaims()))
	pub := k.Priv.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, []byte(input), sig) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkRawES256(b *testing.B) {
	k := ssotest.NewESKey(b, "es")
	input, sig := rawParts(b, k.Mint(b, ssotest.ValidClaims()))
	pub := k.Priv.Public().(*ecdsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, h[:], r, s) {
			b.Fatal("bad signature")
		}
	}
}
