package sso

import (
	"encoding/base64"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// b64 is the only base64 a token may use: URL alphabet, no padding, and
// Strict, so non-zero trailing bits are refused. (Strict still skips CR and
// LF; splitToken refuses them first.)
var b64 = base64.RawURLEncoding.Strict()

// b64val maps a base64url byte to its 6-bit value, or -1.
var b64val = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

func base64DecodedLen(n int) int { return n * 6 / 8 }

// segments are a compact token's three parts, as splitToken found them.
type segments struct {
	header, payload, signature string
	signingInput               string // header.payload: what the signature covers
}

// splitToken makes the structural checks that need no decoding: three
// non-empty segments of the base64url alphabet (so no padding, whitespace or
// JSON serialization) each in canonical form, which means decoding and
// re-encoding it gives the same text.
func splitToken(t string) (segments, error) {
	if t[0] == '{' {
		return segments{}, errorf(ErrMalformed, "JWS JSON serialization is not accepted")
	}
	var dots [2]int
	nd := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		if b64val[c] >= 0 {
			continue
		}
		if c != '.' {
			return segments{}, errorf(ErrMalformed, "byte %#02x at %d is not base64url", c, i)
		}
		if nd == 2 {
			return segments{}, errorf(ErrMalformed, "more than three segments")
		}
		dots[nd] = i
		nd++
	}
	if nd != 2 {
		return segments{}, errorf(ErrMalformed, "%d segments, want 3", nd+1)
	}
	segs := [3]string{t[:dots[0]], t[dots[0]+1 : dots[1]], t[dots[1]+1:]}
	for i, s := range segs {
		if !canonical(s) {
			return segments{}, errorf(ErrMalformed, "segment %d is empty or not canonical base64url", i+1)
		}
	}
	return segments{header: segs[0], payload: segs[1], signature: segs[2], signingInput: t[:dots[1]]}, nil
}

// canonical reports whether a base64url string of valid characters is
// non-empty and has the one encoding its bytes have: a length that is not 1
// mod 4, and zero bits in the last character beyond the data.
func canonical(s string) bool {
	if len(s) == 0 {
		return false
	}
	last := b64val[s[len(s)-1]]
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		return last&0x0f == 0
	case 3:
		return last&0x03 == 0
	}
	return true
}

// parseHeader reads the protected header: alg, kid and typ as strings, no
// duplicate keys, no crit (nothing here understands an extension) and no b64
// (go-jose honours b64:false, which would change what the signature covers).
// Other members, jwk, jku, x5u and x5c among them, are ignored: the key comes
// only from the key set.
//
// plain reports a header of alg, kid and typ only: what the issuer writes.
func (v *Verifier) parseHeader(data []byte) (alg, kid string, plain bool, err error) {
	var s objectScanner
	if err := s.init(data); err != nil {
		return "", "", false, errorf(ErrMalformed, "header: %v", err)
	}
	var rawAlg, rawKid, rawTyp []byte
	plain = true
	for {
		key, val, ok, err := s.next()
		if err != nil {
			return "", "", false, errorf(ErrMalformed, "header: %v", err)
		}
		if !ok {
			break
		}
		switch string(key) {
		case "alg":
			rawAlg = val
		case "kid":
			rawKid = val
		case "typ":
			rawTyp = val
		case "crit", "b64":
			return "", "", false, errorf(ErrMalformed, "header has %q", key)
		default:
			plain = false
		}
	}
	if rawAlg == nil {
		return "", "", false, errorf(ErrMalformed, "header has no alg")
	}
	alg, ok := v.algAllowed(rawAlg)
	if !ok {
		return "", "", false, errorf(ErrSignature, "alg %s is not one of %v", rawAlg, v.sortedAlgs())
	}
	if rawKid == nil {
		return "", "", false, errorf(ErrMalformed, "header has no kid")
	}
	if kid, err = jsonString(rawKid); err != nil || kid == "" {
		return "", "", false, errorf(ErrMalformed, "header kid is not a non-empty string")
	}
	if rawTyp == nil || !jsonStringIs(rawTyp, wire.TokenType) {
		return "", "", false, errorf(ErrClaims, "typ is %s, want %q", rawTyp, wire.TokenType)
	}
	return alg, kid, plain, nil
}
