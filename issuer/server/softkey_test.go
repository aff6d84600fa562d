package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softKey is a software passkey: what a platform authenticator does,
// written out so that tests can craft every field of its answers.
type softKey struct {
	t      testing.TB
	id     []byte
	priv   *ecdsa.PrivateKey
	count  uint32
	handle []byte // the user handle it was created for
}

func newSoftKey(t testing.TB) *softKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &softKey{t: t, id: id, priv: priv}
}

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// ceremonyInput is what a test may change in an answer.
type ceremonyInput struct {
	typ       string // clientData type; default per ceremony
	challenge string // default: the one in the options
	origin    string // default: the issuer's
	rpID      string // hashed into authData; default: the options' RP ID
	flags     byte   // default UP|UV (plus AT when creating)
	count     *uint32
	handle    []byte // assertion user handle; default the key's
	signer    *ecdsa.PrivateKey
	credID    []byte
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (k *softKey) clientData(typ, challenge, origin string) []byte {
	data, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return data
}

func (k *softKey) authData(rpID string, flags byte, count uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, count)
	return append(out, attested...)
}

func (k *softKey) cose() []byte {
	// The uncompressed point: 0x04, then x and y, 32 bytes each.
	point, err := k.priv.PublicKey.Bytes()
	if err != nil {
		k.t.Fatal(err)
	}
	key, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:]})
	if err != nil {
		k.t.Fatal(err)
	}
	return key
}

// create answers registration options (the JSON /webauthn/register/begin
// sent) as navigator.credentials.create would, with in's changes.
func (k *softKey) create(options, origin string, in ceremonyInput) []byte {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(options), &o); err != nil {
		k.t.Fatalf("registration options %s: %v", options, err)
	}
	handle, err := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		k.t.Fatalf("user.id %q: %v", o.PublicKey.User.ID, err)
	}
	k.handle = handle
	in = k.defaults(in, "webauthn.create", o.PublicKey.Challenge, origin, o.PublicKey.RP.ID, flagUP|flagUV|flagAT)
	attested := make([]byte, 16) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(in.credID)))
	attested = append(append(attested, in.credID...), k.cose()...)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{},
		"authData": k.authData(in.rpID, in.flags, *in.count, attested)})
	if err != nil {
		k.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"id": b64(in.credID), "rawId": b64(in.credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64(k.clientData(in.typ, in.challenge, in.origin)),
			"attestationObject": b64(obj), "transports": []string{"internal"}},
		"clientExtensionResults": map[string]any{}})
	return body
}

// get answers sign-in options as navigator.credentials.get would; each
// answer advances the signature counter unless in fixes it.
func (k *softKey) get(options, origin string, in ceremonyInput) []byte {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(options), &o); err != nil {
		k.t.Fatalf("sign-in options %s: %v", options, err)
	}
	if in.count == nil {
		k.count++
		c := k.count
		in.count = &c
	}
	in = k.defaults(in, "webauthn.get", o.PublicKey.Challenge, origin, o.PublicKey.RPID, flagUP|flagUV)
	if in.handle == nil {
		in.handle = k.handle
	}
	auth := k.authData(in.rpID, in.flags, *in.count, nil)
	cd := k.clientData(in.typ, in.challenge, in.origin)
	sum := sha256.Sum256(cd)
	sig, err := ecdsa.SignASN1(rand.Reader, in.signer, sha256Sum(append(append([]byte{}, auth...), sum[:]...)))
	if err != nil {
		k.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"id": b64(in.credID), "rawId": b64(in.credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64(cd), "authenticatorData": b64(auth), "signature": b64(sig),
			"userHandle": b64(in.handle)},
		"clientExtensionResults": map[string]any{}})
	return body
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func (k *softKey) defaults(in ceremonyInput, typ, challenge, origin, rpID string, flags byte) ceremonyInput {
	if in.typ == "" {
		in.typ = typ
	}
	if in.challenge == "" {
		in.challenge = challenge
	}
	if in.origin == "" {
		in.origin = origin
	}
	if in.rpID == "" {
		in.rpID = rpID
	}
	if in.flags == 0 {
		in.flags = flags
	}
	if in.count == nil {
		in.count = &k.count
	}
	if in.signer == nil {
		in.signer = k.priv
	}
	if in.credID == nil {
		in.credID = k.id
	}
	return in
}

// jsonPost posts JSON to a /webauthn/ endpoint as passkeys.js does: the
// issuer's Origin and the form token in X-CSRF-Token.
func (b *browser) jsonPost(path string, body []byte) *response {
	b.h.t.Helper()
	tok := b.token()
	return b.do(request{method: http.MethodPost, target: path, body: strings.NewReader(string(body)),
		header: http.Header{"Content-Type": {"application/json"}, "Origin": {b.h.origin()}, "X-Csrf-Token": {tok}}})
}

// addPasskey registers k for the signed-in browser, whose password is the
// tests' usual "correct horse", and fails unless it works.
func (b *browser) addPasskey(k *softKey, name string) {
	b.h.t.Helper()
	b.addPasskeyWithPassword(k, name, "correct horse")
}

// passkeyLogin signs in with k alone and returns the finish response.
func (b *browser) passkeyLogin(k *softKey, in ceremonyInput) *response {
	b.h.t.Helper()
	begin := b.jsonPost("/webauthn/login/begin", []byte(`{"return_to":""}`))
	if begin.StatusCode != http.StatusOK {
		b.h.t.Fatalf("login begin: %d %s", begin.StatusCode, begin.body)
	}
	return b.jsonPost("/webauthn/login/finish", k.get(begin.body, b.h.origin(), in))
}
