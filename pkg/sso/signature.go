package sso

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// es256Size is an ES256 signature's length: r and s, 32 bytes each (RFC
// 7518 §3.4), the only length go-jose accepts.
const es256Size = 64

// p256Order is N of P-256: r and s must lie in [1, N-1].
var p256Order = elliptic.P256().Params().N

// checkSignature verifies the signature of a token whose structure and
// header verifyCold has already checked, with the standard library over
// the signing input, and returns the decoded payload. It refuses what
// go-jose's Verify refuses (differential_test.go holds it to that): an
// Ed25519 signature that is not 64 bytes or does not verify; an ES256
// signature that is not 64 bytes, or whose r or s is zero or not below the
// group order (go-jose hands both to ecdsa.Verify, which refuses them), or
// that does not verify. key is the one the key set holds for kid, of the
// type alg needs (checkKey).
func checkSignature(key any, alg, kid string, segs segments) ([]byte, error) {
	var sig [es256Size]byte // both algorithms' signatures are 64 bytes
	if base64DecodedLen(len(segs.signature)) != len(sig) {
		return nil, errorf(ErrSignature, "kid %q: signature of %d bytes, want %d", kid, base64DecodedLen(len(segs.signature)), len(sig))
	}
	// Copies into stack buffers where they fit: a Canopy token's signing
	// input is well under 1 KiB, and a string passed as []byte would be
	// copied to the heap on every verify.
	var sigText [86]byte // base64 of 64 bytes
	if _, err := b64.Decode(sig[:], sigText[:copy(sigText[:], segs.signature)]); err != nil {
		return nil, errorf(ErrMalformed, "signature: %v", err)
	}
	var inputBuf [1024]byte
	var input []byte
	if len(segs.signingInput) <= len(inputBuf) {
		input = inputBuf[:copy(inputBuf[:], segs.signingInput)]
	} else {
		input = []byte(segs.signingInput)
	}
	ok := false
	switch alg {
	case wire.AlgEdDSA:
		pub, isEd := key.(ed25519.PublicKey)
		ok = isEd && ed25519.Verify(pub, input, sig[:])
	case wire.AlgES256:
		pub, isEC := key.(*ecdsa.PublicKey)
		if !isEC {
			break
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(p256Order) >= 0 || s.Cmp(p256Order) >= 0 {
			return nil, errorf(ErrSignature, "kid %q: r or s out of range", kid)
		}
		sum := sha256.Sum256(input)
		ok = ecdsa.Verify(pub, sum[:], r, s)
	}
	if !ok {
		return nil, errorf(ErrSignature, "kid %q: signature does not verify", kid)
	}
	payload := make([]byte, base64DecodedLen(len(segs.payload)))
	n, err := b64.Decode(payload, input[len(segs.header)+1:])
	if err != nil {
		return nil, errorf(ErrMalformed, "payload: %v", err)
	}
	return payload[:n], nil
}

// joseVerify is the signature check by go-jose: the whole token parsed
// again, then verified. It decides tokens whose header carries more than
// the issuer writes, and is the differential test's oracle for all.
func (v *Verifier) joseVerify(token, alg, kid string, key any) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, v.algs[alg])
	if err != nil {
		return nil, errorf(ErrMalformed, "%v", err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, errorf(ErrSignature, "kid %q: %v", kid, err)
	}
	return payload, nil
}
