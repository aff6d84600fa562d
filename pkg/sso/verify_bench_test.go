package sso

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// rawVerifier returns the bare standard-library check of tok's signature:
// the floor under any verifier of the same token.
func rawVerifier(b testing.TB, k *ssotest.Key, tok string) func() bool {
	input, sig := rawParts(b, tok)
	switch pub := k.Priv.Public().(type) {
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(pub, []byte(input), sig) }
	case *ecdsa.PublicKey:
		return func() bool {
			h := sha256.Sum256([]byte(input))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(pub, h[:], r, s)
		}
	}
	b.Fatalf("unknown key type %T", k.Priv)
	return nil
}

// BenchmarkColdVsRaw verifies the same token cold (cache disabled) and with
// the bare signature check, alternating one of each per iteration and timing
// each apart, so that the noise of a shared machine falls on both alike. It
// reports both costs and cold/raw, the ratio the 1.25× target is about; its
// own ns/op is the sum of the pair.
func BenchmarkColdVsRaw(b *testing.B) {
	for _, tc := range []struct {
		alg string
		key func(testing.TB, string) *ssotest.Key
	}{{wire.AlgEdDSA, ssotest.NewEdKey}, {wire.AlgES256, ssotest.NewESKey}} {
		b.Run(tc.alg, func(b *testing.B) {
			k := tc.key(b, "k")
			v, tok := benchSetup(b, k, -1)
			raw := rawVerifier(b, k, tok)
			ctx := context.Background()
			cold := func() bool {
				_, err := v.Verify(ctx, tok)
				return err == nil
			}
			var coldT, rawT time.Duration
			n := 0
			for b.Loop() {
				first, second, ft, st := raw, cold, &rawT, &coldT
				if n%2 == 1 { // swap the order so neither always runs on a warm cache
					first, second, ft, st = cold, raw, &coldT, &rawT
				}
				t0 := time.Now()
				ok1 := first()
				t1 := time.Now()
				ok2 := second()
				t2 := time.Now()
				if !ok1 || !ok2 {
					b.Fatal("verification failed")
				}
				*ft += t1.Sub(t0)
				*st += t2.Sub(t1)
				n++
			}
			b.ReportMetric(float64(rawT.Nanoseconds())/float64(n), "raw-ns/op")
			b.ReportMetric(float64(coldT.Nanoseconds())/float64(n), "cold-ns/op")
			b.ReportMetric(float64(coldT)/float64(rawT), "cold/raw")
		})
	}
}
