package keys

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// allAlgs is what the issuer keeps: one lifecycle per ID token algorithm.
func allAlgsOptions(c *fakeClock) Options {
	o := testOptions(wire.AlgEdDSA, c)
	o.Algs = wire.IDTokenAlgorithms()
	return o
}

// activeByAlg maps each algorithm to its active kid, failing on two.
func activeByAlg(t *testing.T, d *Dir, state string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, in := range d.List() {
		if in.State != state {
			continue
		}
		if m[in.Alg] != "" {
			t.Fatalf("two %s keys of %s: %+v", state, in.Alg, d.List())
		}
		m[in.Alg] = in.KID
	}
	return m
}

func TestOneLifecyclePerAlgorithm(t *testing.T) {
	c := newClock()
	d := mustOpen(t, filepath.Join(t.TempDir(), "keys"), allAlgsOptions(c))
	if err := d.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := d.Ready(); err != nil {
		t.Fatal(err)
	}
	active, next := activeByAlg(t, d, StateActive), activeByAlg(t, d, StateNext)
	for _, alg := range wire.IDTokenAlgorithms() {
		if active[alg] == "" || next[alg] == "" {
			t.Fatalf("%s lacks an active or next key: %+v", alg, d.List())
		}
	}
	if len(d.List()) != 6 {
		t.Fatalf("want 6 keys, have %+v", d.List())
	}

	// The access token is signed by the Alg key only.
	if h := header(t, mustSign(t, d)); h.Alg != wire.AlgEdDSA || h.Kid != active[wire.AlgEdDSA] || h.Typ != wire.TokenType {
		t.Errorf("access token header %+v", h)
	}
	// ID tokens by the key of the algorithm asked for, with their typ.
	for _, alg := range wire.IDTokenAlgorithms() {
		tok, err := d.SignAs(alg, wire.IDTokenType, claims)
		if err != nil {
			t.Fatalf("SignAs(%s): %v", alg, err)
		}
		if h := header(t, tok); h.Alg != alg || h.Kid != active[alg] || h.Typ != wire.IDTokenType {
			t.Errorf("SignAs(%s) header %+v", alg, h)
		}
		verifyAnyAlg(t, d, tok)
	}
	if _, err := d.SignAs(wire.AlgRS256, wire.TokenType, claims); err == nil {
		t.Error("SignAs made an access token")
	}
	if _, err := d.SignAs("PS256", wire.IDTokenType, claims); !errors.Is(err, ErrNoActiveKey) {
		t.Errorf("SignAs(PS256): %v, want ErrNoActiveKey", err)
	}

	// JWKS publishes all six, RSA included, without private parts.
	body, _ := d.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 6 || strings.Contains(string(body), `"d"`) || strings.Contains(string(body), `"p"`) {
		t.Fatalf("JWKS %s", body)
	}
	for _, k := range set.Keys {
		if k.Algorithm == wire.AlgRS256 {
			if pub, ok := k.Key.(*rsa.PublicKey); !ok || pub.N.BitLen() != RSABits {
				t.Errorf("RS256 key %T", k.Key)
			}
		}
	}

	// Rotation is refused for every algorithm until next keys are published
	// long enough, then rotates each; each keeps one active key.
	var early *TooEarlyError
	if err := d.Rotate(false); !errors.As(err, &early) {
		t.Fatalf("Rotate: %v, want TooEarlyError", err)
	}
	if !slices.Equal(kidsOf(d), kidsOnDisk(t, d.Path())) || len(d.List()) != 6 {
		t.Errorf("refused rotation changed the set: %+v", d.List())
	}
	c.Advance(testMaxAge)
	if err := d.Rotate(false); err != nil {
		t.Fatal(err)
	}
	after, retired := activeByAlg(t, d, StateActive), activeByAlg(t, d, StateRetired)
	for _, alg := range wire.IDTokenAlgorithms() {
		if after[alg] != next[alg] || retired[alg] != active[alg] {
			t.Errorf("%s: active %s retired %s, want %s and %s", alg, after[alg], retired[alg], next[alg], active[alg])
		}
	}

	// Rotating one algorithm leaves the others alone.
	c.Advance(testMaxAge)
	if err := d.RotateAlgs([]string{wire.AlgRS256}, false); err != nil {
		t.Fatal(err)
	}
	again := activeByAlg(t, d, StateActive)
	if again[wire.AlgRS256] == after[wire.AlgRS256] || again[wire.AlgEdDSA] != after[wire.AlgEdDSA] || again[wire.AlgES256] != after[wire.AlgES256] {
		t.Errorf("RotateAlgs(RS256): before %v after %v", after, again)
	}
	if err := d.RotateAlgs([]string{"HS256"}, true); err == nil {
		t.Error("RotateAlgs(HS256) succeeded")
	}

	// Revoking the RS256 key puts a fresh RS256 key in its place.
	if err := d.Revoke(again[wire.AlgRS256]); err != nil {
		t.Fatal(err)
	}
	fresh := activeByAlg(t, d, StateActive)
	if fresh[wire.AlgRS256] == "" || fresh[wire.AlgRS256] == again[wire.AlgRS256] || fresh[wire.AlgEdDSA] != again[wire.AlgEdDSA] {
		t.Errorf("after revoke: %v", fresh)
	}

	// A second instance reads the same set, RSA keys included.
	d2 := mustOpen(t, d.Path(), allAlgsOptions(c))
	if !slices.Equal(kidsOf(d2), kidsOf(d)) {
		t.Errorf("second instance sees %v, want %v", kidsOf(d2), kidsOf(d))
	}
}

func TestTwoActiveKeysRepairedPerAlgorithm(t *testing.T) {
	c := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	now := c.Now()
	older := plant(t, dir, wire.AlgRS256, meta{State: StateActive, Created: now, Published: now, Activated: now.Add(-time.Hour)})
	newer := plant(t, dir, wire.AlgRS256, meta{State: StateActive, Created: now, Published: now, Activated: now})
	ed := plant(t, dir, wire.AlgEdDSA, meta{State: StateActive, Created: now, Published: now, Activated: now.Add(-2 * time.Hour)})
	d := mustOpen(t, dir, allAlgsOptions(c))
	tok, err := d.SignAs(wire.AlgRS256, wire.IDTokenType, claims)
	if err != nil {
		t.Fatal(err)
	}
	if h := header(t, tok); h.Kid != newer.kid {
		t.Errorf("signed with %s, want %s", h.Kid, newer.kid)
	}
	if h := header(t, mustSign(t, d)); h.Kid != ed.kid {
		t.Errorf("access token signed with %s, want the EdDSA key %s: one active key per algorithm", h.Kid, ed.kid)
	}
	if err := d.Ensure(); err != nil {
		t.Fatal(err)
	}
	if a, r := activeByAlg(t, d, StateActive), activeByAlg(t, d, StateRetired); a[wire.AlgRS256] != newer.kid || r[wire.AlgRS256] != older.kid || a[wire.AlgEdDSA] != ed.kid {
		t.Errorf("active %v retired %v", a, r)
	}
}

func TestSmallRSAKeyRefused(t *testing.T) {
	// A 1024-bit key in a file is refused like any bad key file.
	k := &key{kid: "small", alg: wire.AlgRS256, meta: meta{State: StateActive, Created: time.Unix(1, 0), Published: time.Unix(1, 0), Activated: time.Unix(1, 0)}}
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k.priv, k.pub = priv, &priv.PublicKey
	data, err := encodeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeKey("small.json", data); err == nil || !strings.Contains(err.Error(), "bits") {
		t.Errorf("decodeKey of a 1024-bit key: %v", err)
	}
}

// verifyAnyAlg verifies token with the published key its kid names.
func verifyAnyAlg(t *testing.T, d *Dir, token string) {
	t.Helper()
	body, _ := d.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	ks := set.Key(jws.Signatures[0].Header.KeyID)
	if len(ks) != 1 || ks[0].Algorithm != jws.Signatures[0].Header.Algorithm {
		t.Fatalf("no published key for %+v", jws.Signatures[0].Header)
	}
	if _, err := jws.Verify(ks[0].Key); err != nil {
		t.Errorf("verify: %v", err)
	}
}
