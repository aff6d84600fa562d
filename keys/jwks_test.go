package keys

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func TestJWKSPublicOnly(t *testing.T) {
	want := map[string][]string{
		"OKP": {"alg", "crv", "kid", "kty", "use", "x"},
		"EC":  {"alg", "crv", "kid", "kty", "use", "x", "y"},
	}
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			d, _ := ensured(t, alg)
			if err := d.Rotate(true); err != nil { // active, next and retired
				t.Fatal(err)
			}
			body, _ := d.JWKS()
			var set struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(body, &set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 3 {
				t.Fatalf("JWKS holds %d keys, want 3: %s", len(set.Keys), body)
			}
			for _, k := range set.Keys {
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
					if _, ok := k[private]; ok {
						t.Fatalf("JWKS publishes private member %q: %s", private, body)
					}
				}
				var members []string
				for m := range k {
					members = append(members, m)
				}
				slices.Sort(members)
				kty, _ := k["kty"].(string)
				if !slices.Equal(members, want[kty]) {
					t.Errorf("key members %v, want %v", members, want[kty])
				}
				if k["use"] != "sig" || k["alg"] != alg {
					t.Errorf("use %v alg %v", k["use"], k["alg"])
				}
			}
			if err := verifyWithJWKS(t, d, mustSign(t, d)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestJWKSOrderAndETag(t *testing.T) {
	d, c := ensured(t, wire.AlgEdDSA)
	if err := d.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if err := d.Rotate(true); err != nil { // two retired keys
		t.Fatal(err)
	}
	body, etag := d.JWKS()
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, k := range set.Keys {
		got = append(got, k.Kid)
	}
	retired := byState(d)[StateRetired]
	slices.Sort(retired)
	want = append(want, one(t, d, StateActive).KID, one(t, d, StateNext).KID)
	want = append(want, retired...)
	if !slices.Equal(got, want) {
		t.Errorf("JWKS order %v, want active, next, retired by kid: %v", got, want)
	}

	sum := sha256.Sum256(body)
	if want := `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`; etag != want {
		t.Errorf("ETag %s, want %s", etag, want)
	}
	// Stable: the same for another instance and across reloads without change.
	other := mustOpen(t, d.Path(), testOptions(wire.AlgEdDSA, c))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	body2, etag2 := d.JWKS()
	body3, etag3 := other.JWKS()
	if etag2 != etag || etag3 != etag || string(body2) != string(body) || string(body3) != string(body) {
		t.Errorf("JWKS not stable: %s %s %s", etag, etag2, etag3)
	}
	if err := d.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if _, etag4 := d.JWKS(); etag4 == etag {
		t.Error("ETag unchanged after a rotation")
	}
}
