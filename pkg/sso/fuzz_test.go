package sso

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func fuzzVerifier(t testing.TB) *Verifier {
	ed, es := ssotest.FixedKeys(t)
	ks, err := NewStaticKeySet(ed.JWK(), es.JWK())
	if err != nil {
		t.Fatal(err)
	}
	return newTestVerifier(t, ks, ssotest.NewClock())
}

// FuzzVerify checks that Verify never panics, always answers with one of the
// package's errors, gives the same verdict, reason and claims as the same
// verifier checking every signature with go-jose (differential_test.go),
// and accepts only what an independent check (go-jose alone plus a plain
// JSON decode) also finds valid.
func FuzzVerify(f *testing.F) {
	ed, es := ssotest.FixedKeys(f)
	good := ssotest.ValidClaims()
	for _, s := range []string{
		ed.Mint(f, good), es.Mint(f, good),
		ed.SignRaw(f, `{"alg":"EdDSA","kid":"fz-ed","kid":"fz-es","typ":"at+jwt"}`, ssotest.ClaimsJSON(f, good)),
		ed.SignRaw(f, ed.Header(), `{"exp":1.5}`),
		"", ".", "..", "a.b.c", strings.Repeat(".", 100),
	} {
		f.Add(s)
	}
	v := fuzzVerifier(f)
	ks, err := NewStaticKeySet(ed.JWK(), es.JWK())
	if err != nil {
		f.Fatal(err)
	}
	pair := newVerifierPair(f, ks, Config{Issuer: ssotest.Issuer, Audience: ssotest.Audience,
		Now: ssotest.NewClock().Now, Revoked: ssotest.RevokedSet{"s_revoked": true}})
	f.Fuzz(func(t *testing.T, token string) {
		pair.agree(t, "fuzz input", token)
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			var re *reasonError
			if !errors.As(err, &re) {
				t.Fatalf("error outside the package's set: %v", err)
			}
			if c != nil {
				t.Fatal("claims with an error")
			}
			return
		}
		if err := oracle(token, ed, es); err != nil {
			t.Fatalf("accepted %q, but: %v", token, err)
		}
	})
}

// oracle is a second, plainer opinion on a token the verifier accepted.
func oracle(token string, keys ...*ssotest.Key) error {
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return errors.New("not three segments")
	}
	for _, s := range segs {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != s {
			return fmt.Errorf("segment %q not canonical", s)
		}
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		return err
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders["typ"] != wire.TokenType {
		return fmt.Errorf("typ %v", h.ExtraHeaders["typ"])
	}
	var key *ssotest.Key
	for _, k := range keys {
		if k.KID == h.KeyID {
			key = k
		}
	}
	if key == nil || key.Alg != h.Algorithm {
		return fmt.Errorf("kid %q alg %q", h.KeyID, h.Algorithm)
	}
	payload, err := jws.Verify(key.Priv.Public())
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	if m["iss"] != ssotest.Issuer || m["aud"] != ssotest.Audience {
		return fmt.Errorf("iss %v aud %v", m["iss"], m["aud"])
	}
	for _, k := range []string{"sub", "sid", "jti"} {
		if s, ok := m[k].(string); !ok || s == "" {
			return fmt.Errorf("%s %v", k, m[k])
		}
	}
	now := ssotest.Epoch.Unix()
	times := map[string]int64{}
	for _, k := range []string{"exp", "iat", "nbf"} {
		n, ok := m[k].(json.Number)
		if !ok {
			return fmt.Errorf("%s %v", k, m[k])
		}
		i, err := n.Int64()
		if err != nil {
			return fmt.Errorf("%s %v", k, n)
		}
		times[k] = i
	}
	if times["exp"]+30 < now || times["nbf"]-30 > now || times["iat"]-30 > now || times["exp"]-times["iat"] > 3600 {
		return fmt.Errorf("times %v at %d", times, now)
	}
	return nil
}

// TestWriteFuzzSeeds rewrites testdata/fuzz/FuzzVerify from the hostile-token
// table; run with CANOPY_WRITE_SEEDS=1 after changing it.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CANOPY_WRITE_SEEDS") == "" {
		t.Skip("set CANOPY_WRITE_SEEDS=1 to rewrite the seed corpus")
	}
	ed, es := ssotest.FixedKeys(t)
	good := ssotest.ValidClaims()
	hdr := ed.Header()
	seeds := map[string]string{
		"valid-eddsa":        ed.Mint(t, good),
		"valid-es256":        es.Mint(t, good),
		"expired":            ed.Mint(t, ssotest.With(good, "iat", ssotest.Epoch.Unix()-400, "nbf", ssotest.Epoch.Unix()-400, "exp", ssotest.Epoch.Unix()-100)),
		"wrong-aud":          ed.Mint(t, ssotest.With(good, "aud", "other.localhost")),
		"aud-array":          ed.SignRaw(t, hdr, ssotest.ClaimsJSON(t, ssotest.With(good, "aud", []string{ssotest.Audience}))),
		"exp-float":          ed.SignRaw(t, hdr, strings.Replace(ssotest.ClaimsJSON(t, good), `"exp":1800000300`, `"exp":1800000300.5`, 1)),
		"dup-header":         ed.SignRaw(t, `{"alg":"EdDSA","kid":"fz-ed","kid":"fz-es","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)),
		"dup-claims":         ed.SignRaw(t, hdr, `{"sub":"x",`+ssotest.ClaimsJSON(t, good)[1:]),
		"escaped-dup-claims": ed.SignRaw(t, hdr, `{"\u0073ub":"x",`+ssotest.ClaimsJSON(t, good)[1:]),
		"crit":               ed.SignRaw(t, `{"alg":"EdDSA","crit":["b64"],"b64":false,"kid":"fz-ed","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)),
		"alg-none":           ssotest.B64(`{"alg":"none","kid":"fz-ed","typ":"at+jwt"}`) + "." + ssotest.B64(ssotest.ClaimsJSON(t, good)) + ".",
		"alg-hs256":          ed.SignRaw(t, `{"alg":"HS256","kid":"fz-ed","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)),
		"alg-mismatch":       es.SignRaw(t, `{"alg":"ES256","kid":"fz-ed","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)),
		"kid-unknown":        ed.SignRaw(t, `{"alg":"EdDSA","kid":"nope","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)),
		"valid-jwk-ignored":  ed.SignRaw(t, `{"alg":"EdDSA","jwk":`+mustJSONKey(ed)+`,"kid":"fz-ed","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)),
		"newline":            strings.Replace(ed.Mint(t, good), ".", ".\n", 1),
		"padded":             ssotest.B64(hdr+" ") + "==" + "." + ssotest.B64(ssotest.ClaimsJSON(t, good)) + ".AAAA",
		"dots":               strings.Repeat(".", 5000),
		"json-serialization": `{"payload":"e30","protected":"` + ssotest.B64(hdr) + `","signature":"AAAA"}`,
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, tok := range seeds {
		data := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", tok)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFuzzSeedVerdicts runs the seed corpus as a table: the valid-* tokens
// verify, every other one is refused.
func TestFuzzSeedVerdicts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzVerify", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	v := fuzzVerifier(t)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, quoted, ok := strings.Cut(strings.TrimSpace(string(data)), "\nstring(")
			if !ok {
				t.Fatalf("not a go test fuzz v1 string file")
			}
			var tok string
			if _, err := fmt.Sscanf(strings.TrimSuffix(quoted, ")"), "%q", &tok); err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), tok)
			if valid := strings.HasPrefix(name, "valid-"); valid != (err == nil) {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
