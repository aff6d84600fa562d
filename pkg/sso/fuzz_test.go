package sso

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Fixed keys, so the seed corpus in testdata/fuzz holds tokens that verify.
func fuzzKeys(t testing.TB) (*testKey, *testKey) {
	ed := &testKey{kid: "fz-ed", alg: wire.AlgEdDSA, priv: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	esPriv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return ed, &testKey{kid: "fz-es", alg: wire.AlgES256, priv: esPriv}
}

func fuzzVerifier(t testing.TB) *Verifier {
	ed, es := fuzzKeys(t)
	ks, err := NewStaticKeySet(ed.jwk(), es.jwk())
	if err != nil {
		t.Fatal(err)
	}
	return newTestVerifier(t, ks, newClock())
}

// FuzzVerify checks that Verify never panics, always answers with one of the
// package's errors, and accepts only what an independent check (go-jose
// alone plus a plain JSON decode) also finds valid.
func FuzzVerify(f *testing.F) {
	ed, es := fuzzKeys(f)
	good := validClaims()
	for _, s := range []string{
		ed.mint(f, good), es.mint(f, good),
		ed.signRaw(f, `{"alg":"EdDSA","kid":"fz-ed","kid":"fz-es","typ":"at+jwt"}`, claimsJSON(f, good)),
		ed.signRaw(f, ed.header(), `{"exp":1.5}`),
		"", ".", "..", "a.b.c", strings.Repeat(".", 100),
	} {
		f.Add(s)
	}
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, token string) {
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
func oracle(token string, keys ...*testKey) error {
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
	var key *testKey
	for _, k := range keys {
		if k.kid == h.KeyID {
			key = k
		}
	}
	if key == nil || key.alg != h.Algorithm {
		return fmt.Errorf("kid %q alg %q", h.KeyID, h.Algorithm)
	}
	payload, err := jws.Verify(key.priv.Public())
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	if m["iss"] != testIssuer || m["aud"] != testAudience {
		return fmt.Errorf("iss %v aud %v", m["iss"], m["aud"])
	}
	for _, k := range []string{"sub", "sid", "jti"} {
		if s, ok := m[k].(string); !ok || s == "" {
			return fmt.Errorf("%s %v", k, m[k])
		}
	}
	now := testEpoch.Unix()
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

// FuzzCookies feeds arbitrary Cookie headers and paths through cookie
// selection and the whole middleware: no panic, only the statuses the
// middleware can answer, and Set-Cookie headers that cannot inject headers.
func FuzzCookies(f *testing.F) {
	ed, _ := fuzzKeys(f)
	tok := ed.mint(f, validClaims())
	tok2 := ed.mint(f, with(validClaims(), "sid", "s_2"))
	for _, s := range [][2]string{
		{"canopy=" + tok, "/"},
		{"canopy=" + tok + "; canopy=" + tok2, "/a/b/c"},
		{"canopy=" + tok + ";canopy=" + tok, "/a//b/"},
		{"canopy =x; Canopy=y;  canopy=z", "/%2F/x"},
		{"canopy-loop=2.1800000000; canopy=junk", "/a;b"},
		{";;;=;canopy", ""},
	} {
		f.Add(s[0], s[1])
	}
	v := fuzzVerifier(f)
	mw, err := NewMiddleware(v, MiddlewareConfig{Logger: discardLogger(), Now: newClock().Now},
		SiteConfig{CookieName: "canopy", CookieDomain: testAudience, RefreshURL: refreshURL, LoginURL: loginURL})
	if err != nil {
		f.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ClaimsFrom(r.Context()); !ok {
			panic("handler reached without claims")
		}
	}))
	f.Fuzz(func(t *testing.T, cookie, path string) {
		hdr := http.Header{"Cookie": {cookie}}
		vals, n := cookieValues(hdr, "canopy", maxCookieTokens)
		if n < len(vals) || len(vals) > maxCookieTokens {
			t.Fatalf("n %d, vals %d", n, len(vals))
		}
		for _, val := range vals {
			if !strings.Contains(cookie, "canopy="+val) {
				t.Fatalf("value %q not in %q", val, cookie)
			}
		}
		paths := cookiePaths(path)
		if len(paths) == 0 || paths[0] != "/" || len(paths) > maxExpirePaths {
			t.Fatalf("paths %q", paths)
		}
		for _, p := range paths[1:] {
			if !validCookiePath(p) || !strings.HasPrefix(path+"/", p) {
				t.Fatalf("path %q for %q", p, path)
			}
		}
		u, err := url.Parse("http://alice.domain.localhost" + path)
		if err != nil || u.Host != "alice.domain.localhost" {
			return
		}
		r := httptest.NewRequest("GET", "http://alice.domain.localhost/", nil)
		r.URL, r.RequestURI = u, u.RequestURI()
		r.Header = hdr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch rec.Code {
		case 200, 303, 401:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		for _, sc := range rec.Result().Header.Values("Set-Cookie") {
			if strings.ContainsAny(sc, "\r\n") {
				t.Fatalf("Set-Cookie %q", sc)
			}
		}
	})
}

// TestWriteFuzzSeeds rewrites testdata/fuzz/FuzzVerify from the hostile-token
// table; run with CANOPY_WRITE_SEEDS=1 after changing it.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CANOPY_WRITE_SEEDS") == "" {
		t.Skip("set CANOPY_WRITE_SEEDS=1 to rewrite the seed corpus")
	}
	ed, es := fuzzKeys(t)
	good := validClaims()
	hdr := ed.header()
	seeds := map[string]string{
		"valid-eddsa":        ed.mint(t, good),
		"valid-es256":        es.mint(t, good),
		"expired":            ed.mint(t, with(good, "iat", testEpoch.Unix()-400, "nbf", testEpoch.Unix()-400, "exp", testEpoch.Unix()-100)),
		"wrong-aud":          ed.mint(t, with(good, "aud", "other.localhost")),
		"aud-array":          ed.signRaw(t, hdr, claimsJSON(t, with(good, "aud", []string{testAudience}))),
		"exp-float":          ed.signRaw(t, hdr, strings.Replace(claimsJSON(t, good), `"exp":1800000300`, `"exp":1800000300.5`, 1)),
		"dup-header":         ed.signRaw(t, `{"alg":"EdDSA","kid":"fz-ed","kid":"fz-es","typ":"at+jwt"}`, claimsJSON(t, good)),
		"dup-claims":         ed.signRaw(t, hdr, `{"sub":"x",`+claimsJSON(t, good)[1:]),
		"escaped-dup-claims": ed.signRaw(t, hdr, `{"\u0073ub":"x",`+claimsJSON(t, good)[1:]),
		"crit":               ed.signRaw(t, `{"alg":"EdDSA","crit":["b64"],"b64":false,"kid":"fz-ed","typ":"at+jwt"}`, claimsJSON(t, good)),
		"alg-none":           b64s(`{"alg":"none","kid":"fz-ed","typ":"at+jwt"}`) + "." + b64s(claimsJSON(t, good)) + ".",
		"alg-hs256":          ed.signRaw(t, `{"alg":"HS256","kid":"fz-ed","typ":"at+jwt"}`, claimsJSON(t, good)),
		"alg-mismatch":       es.signRaw(t, `{"alg":"ES256","kid":"fz-ed","typ":"at+jwt"}`, claimsJSON(t, good)),
		"kid-unknown":        ed.signRaw(t, `{"alg":"EdDSA","kid":"nope","typ":"at+jwt"}`, claimsJSON(t, good)),
		"valid-jwk-ignored":  ed.signRaw(t, `{"alg":"EdDSA","jwk":`+mustJSONKey(ed)+`,"kid":"fz-ed","typ":"at+jwt"}`, claimsJSON(t, good)),
		"newline":            strings.Replace(ed.mint(t, good), ".", ".\n", 1),
		"padded":             b64s(hdr+" ") + "==" + "." + b64s(claimsJSON(t, good)) + ".AAAA",
		"dots":               strings.Repeat(".", 5000),
		"json-serialization": `{"payload":"e30","protected":"` + b64s(hdr) + `","signature":"AAAA"}`,
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
