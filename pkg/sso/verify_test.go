package sso

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// revokedSet is a RevocationChecker for tests.
type revokedSet map[string]bool

func (r revokedSet) Revoked(sid string) bool { return r[sid] }

func newTestVerifier(t testing.TB, ks KeySet, clk *clock, mod ...func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Issuer: testIssuer, Audience: testAudience, Now: clk.Now, Revoked: revokedSet{"s_revoked": true}}
	for _, m := range mod {
		m(&cfg)
	}
	v, err := NewVerifier(ks, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	ed := newEdKey(t, "ed1")
	es := newESKey(t, "es1")
	ed2 := newEdKey(t, "ed2") // published, but not the key tokens claim
	attacker := newEdKey(t, "ed1")
	ks, err := NewStaticKeySet(ed.jwk(), es.jwk(), ed2.jwk())
	if err != nil {
		t.Fatal(err)
	}
	now := testEpoch.Unix()
	good := validClaims()
	old := with(good, "iat", now-300, "nbf", now-300) // issued five minutes ago
	hdr := ed.header()
	raw := func(header string, claims map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return ed.signRaw(t, header, claimsJSON(t, claims)) }
	}
	rawText := func(header, claims string) func(t *testing.T) string {
		return func(t *testing.T) string { return ed.signRaw(t, header, claims) }
	}
	attackerCert := func(t *testing.T) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"}, NotAfter: testEpoch.Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, attacker.priv.Public(), attacker.priv)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	attackerJWK := func() string {
		b, _ := attacker.jwk().MarshalJSON()
		return string(b)
	}

	cases := []struct {
		name  string
		token func(t *testing.T) string
		want  error // nil: accepted
	}{
		{"valid EdDSA (go-jose)", func(t *testing.T) string { return ed.mint(t, good) }, nil},
		{"valid ES256 (go-jose)", func(t *testing.T) string { return es.mint(t, good) }, nil},
		{"valid raw EdDSA", raw(hdr, good), nil},
		{"valid ES256 raw", func(t *testing.T) string { return es.signRaw(t, es.header(), claimsJSON(t, good)) }, nil},
		{"whitespace in JSON", rawText(`{ "alg" : "EdDSA" , "kid":"ed1","typ":"at+jwt" }`, "\n"+claimsJSON(t, good)+" "), nil},
		{"unknown claims ignored", raw(hdr, with(good, "x", map[string]any{"a": []any{1, "b"}}, "amr", []string{"pwd"}, "groups", []string{"admin"})), nil},
		{"within leeway", raw(hdr, with(old, "exp", now-29)), nil},
		{"at leeway edge", raw(hdr, with(old, "exp", now-30)), nil},
		{"expired beyond leeway", raw(hdr, with(old, "exp", now-31)), ErrExpired},
		{"nbf within leeway", raw(hdr, with(good, "nbf", now+29)), nil},
		{"nbf in future", raw(hdr, with(good, "nbf", now+31)), ErrClaims},
		{"iat in future", raw(hdr, with(good, "iat", now+31, "exp", now+60)), ErrClaims},
		{"exp-iat over max", raw(hdr, with(good, "iat", now-10, "exp", now-10+3601)), ErrClaims},
		{"exp-iat at max", raw(hdr, with(good, "iat", now-10, "exp", now-10+3600)), nil},
		{"exp before iat", raw(hdr, with(good, "exp", now-1)), ErrClaims},
		{"wrong iss", raw(hdr, with(good, "iss", "http://evil.localhost")), ErrClaims},
		{"wrong aud", raw(hdr, with(good, "aud", "other.localhost")), ErrClaims},
		{"aud array", raw(hdr, with(good, "aud", []string{testAudience})), ErrClaims},
		{"iss number", raw(hdr, with(good, "iss", 1)), ErrClaims},
		{"exp float", raw(hdr, with(good, "exp", 1.5)), ErrClaims},
		{"exp fraction", rawText(hdr, strings.Replace(claimsJSON(t, good), `"exp":1800000300`, `"exp":1800000300.0`, 1)), ErrClaims},
		{"exp exponent", rawText(hdr, strings.Replace(claimsJSON(t, good), `"exp":1800000300`, `"exp":18000003e2`, 1)), ErrClaims},
		{"exp string", raw(hdr, with(good, "exp", "1800000300")), ErrClaims},
		{"exp null", rawText(hdr, strings.Replace(claimsJSON(t, good), `"exp":1800000300`, `"exp":null`, 1)), ErrClaims},
		{"exp negative", raw(hdr, with(good, "exp", -1)), ErrClaims},
		{"exp huge", raw(hdr, with(good, "exp", int64(1e15))), ErrClaims},
		{"exp missing", raw(hdr, with(good, "exp", nil)), ErrClaims},
		{"iat missing", raw(hdr, with(good, "iat", nil)), ErrClaims},
		{"nbf missing", raw(hdr, with(good, "nbf", nil)), ErrClaims},
		{"sub missing", raw(hdr, with(good, "sub", nil)), ErrClaims},
		{"sub empty", raw(hdr, with(good, "sub", "")), ErrClaims},
		{"sub number", raw(hdr, with(good, "sub", 7)), ErrClaims},
		{"sid missing", raw(hdr, with(good, "sid", nil)), ErrClaims},
		{"jti missing", raw(hdr, with(good, "jti", nil)), ErrClaims},
		{"groups not array", raw(hdr, with(good, "groups", "admin")), ErrClaims},
		{"groups of numbers", raw(hdr, with(good, "groups", []int{1})), ErrClaims},
		{"revoked sid", raw(hdr, with(good, "sid", "s_revoked")), ErrRevoked},
		{"duplicate key in header", rawText(`{"alg":"EdDSA","kid":"ed1","kid":"ed2","typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"duplicate alg in header", rawText(`{"alg":"ES256","kid":"ed1","typ":"at+jwt","alg":"EdDSA"}`, claimsJSON(t, good)), ErrMalformed},
		{"duplicate escaped key in header", rawText(`{"alg":"EdDSA","kid":"ed1","typ":"at+jwt","\u0061lg":"EdDSA"}`, claimsJSON(t, good)), ErrMalformed},
		{"duplicate key in claims", rawText(hdr, `{"sub":"u_bob",`+claimsJSON(t, good)[1:]), ErrMalformed},
		{"duplicate escaped key in claims", rawText(hdr, `{"\u0073ub":"u_bob",`+claimsJSON(t, good)[1:]), ErrMalformed},
		{"upper-case header key", rawText(`{"ALG":"EdDSA","kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"upper-case claim key", rawText(hdr, strings.Replace(claimsJSON(t, good), `"sub"`, `"SUB"`, 1)), ErrClaims},
		{"crit", rawText(`{"alg":"EdDSA","crit":["exp"],"exp":1,"kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"b64 false", rawText(`{"alg":"EdDSA","b64":false,"kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"typ JWT", rawText(`{"alg":"EdDSA","kid":"ed1","typ":"JWT"}`, claimsJSON(t, good)), ErrClaims},
		{"typ upper case", rawText(`{"alg":"EdDSA","kid":"ed1","typ":"AT+JWT"}`, claimsJSON(t, good)), ErrClaims},
		{"typ missing", rawText(`{"alg":"EdDSA","kid":"ed1"}`, claimsJSON(t, good)), ErrClaims},
		{"alg none", func(t *testing.T) string {
			return b64s(`{"alg":"none","kid":"ed1","typ":"at+jwt"}`) + "." + b64s(claimsJSON(t, good)) + ".AAAA"
		}, ErrSignature},
		{"alg none empty signature", func(t *testing.T) string {
			return b64s(`{"alg":"none","kid":"ed1","typ":"at+jwt"}`) + "." + b64s(claimsJSON(t, good)) + "."
		}, ErrMalformed},
		{"alg HS256", rawText(`{"alg":"HS256","kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good)), ErrSignature},
		{"alg RS256", rawText(`{"alg":"RS256","kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good)), ErrSignature},
		{"alg number", rawText(`{"alg":1,"kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good)), ErrSignature},
		{"alg missing", rawText(`{"kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"alg not the key's", func(t *testing.T) string {
			return es.signRaw(t, `{"alg":"ES256","kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good))
		}, ErrSignature},
		{"kid unknown", rawText(`{"alg":"EdDSA","kid":"nope","typ":"at+jwt"}`, claimsJSON(t, good)), ErrUnknownKey},
		{"kid missing", rawText(`{"alg":"EdDSA","typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"kid empty", rawText(`{"alg":"EdDSA","kid":"","typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"kid number", rawText(`{"alg":"EdDSA","kid":1,"typ":"at+jwt"}`, claimsJSON(t, good)), ErrMalformed},
		{"other published key's kid", func(t *testing.T) string {
			return ed.signRaw(t, `{"alg":"EdDSA","kid":"ed2","typ":"at+jwt"}`, claimsJSON(t, good))
		}, ErrSignature},
		{"signed by a key not in the set", func(t *testing.T) string { return attacker.mint(t, good) }, ErrSignature},
		{"jwk header with attacker key", func(t *testing.T) string {
			return attacker.signRaw(t, `{"alg":"EdDSA","jwk":`+attackerJWK()+`,"kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good))
		}, ErrSignature},
		{"jku header", func(t *testing.T) string {
			return attacker.signRaw(t, `{"alg":"EdDSA","jku":"http://evil.localhost/jwks","kid":"ed1","typ":"at+jwt"}`, claimsJSON(t, good))
		}, ErrSignature},
		{"x5u header", func(t *testing.T) string {
			return attacker.signRaw(t, `{"alg":"EdDSA","kid":"ed1","typ":"at+jwt","x5u":"http://evil.localhost/cert"}`, claimsJSON(t, good))
		}, ErrSignature},
		{"x5c header with attacker cert", func(t *testing.T) string {
			return attacker.signRaw(t, `{"alg":"EdDSA","kid":"ed1","typ":"at+jwt","x5c":["`+attackerCert(t)+`"]}`, claimsJSON(t, good))
		}, ErrSignature},
		{"newline inside a segment", func(t *testing.T) string {
			tok := ed.mint(t, good)
			return tok[:10] + "\n" + tok[10:]
		}, ErrMalformed},
		{"CR inside the signature", func(t *testing.T) string {
			tok := ed.mint(t, good)
			return tok[:len(tok)-5] + "\r" + tok[len(tok)-5:]
		}, ErrMalformed},
		{"space at the end", func(t *testing.T) string { return ed.mint(t, good) + " " }, ErrMalformed},
		{"padded header", func(t *testing.T) string {
			tok := rawText(`{"alg":"EdDSA","kid":"ed1","typ":"at+jwt" }`, claimsJSON(t, good))(t)
			h, rest, _ := strings.Cut(tok, ".")
			padded := base64.URLEncoding.EncodeToString(mustB64(t, h))
			if !strings.HasSuffix(padded, "=") {
				t.Fatal("test header needs padding")
			}
			return padded + "." + rest
		}, ErrMalformed},
		{"standard alphabet +", func(t *testing.T) string { tok := ed.mint(t, good); return tok[:5] + "+" + tok[6:] }, ErrMalformed},
		{"standard alphabet /", func(t *testing.T) string { tok := ed.mint(t, good); return tok[:len(tok)-3] + "/" + tok[len(tok)-2:] }, ErrMalformed},
		{"non-canonical signature", func(t *testing.T) string {
			tok := ed.mint(t, good)
			last := tok[len(tok)-1]
			return tok[:len(tok)-1] + string(alphabet[b64val[last]|1])
		}, ErrMalformed},
		{"non-canonical header", func(t *testing.T) string {
			tok := rawText(`{"alg":"EdDSA","kid":"ed1","typ":"at+jwt"} `, claimsJSON(t, good))(t)
			h, rest, _ := strings.Cut(tok, ".")
			if len(h)%4 == 0 {
				t.Fatal("header length must not be a multiple of 4 for this case")
			}
			return h[:len(h)-1] + string(alphabet[b64val[h[len(h)-1]]|1]) + "." + rest
		}, ErrMalformed},
		{"length 1 mod 4", func(t *testing.T) string {
			tok := ed.mint(t, good)
			h, rest, _ := strings.Cut(tok, ".")
			for len(h)%4 != 1 {
				h += "A"
			}
			return h + "." + rest
		}, ErrMalformed},
		{"5000 dots", func(t *testing.T) string { return strings.Repeat(".", 5000) }, ErrMalformed},
		{"4 segments", func(t *testing.T) string { return ed.mint(t, good) + ".AAAA" }, ErrMalformed},
		{"2 segments", func(t *testing.T) string { return b64s(hdr) + "." + b64s(claimsJSON(t, good)) }, ErrMalformed},
		{"empty payload", func(t *testing.T) string {
			tok := ed.mint(t, good)
			parts := strings.Split(tok, ".")
			return parts[0] + ".." + parts[2]
		}, ErrMalformed},
		{"over size cap", func(t *testing.T) string {
			return ed.signRaw(t, hdr, claimsJSON(t, with(good, "pad", strings.Repeat("x", 4096))))
		}, ErrMalformed},
		{"JSON serialization", func(t *testing.T) string {
			return `{"payload":"` + b64s(claimsJSON(t, good)) + `","protected":"` + b64s(hdr) + `","signature":"AAAA"}`
		}, ErrMalformed},
		{"header not JSON", rawText(`alg=wire.AlgEdDSA`, claimsJSON(t, good)), ErrMalformed},
		{"header array", rawText(`["alg","EdDSA"]`, claimsJSON(t, good)), ErrMalformed},
		{"claims array", rawText(hdr, `[1,2]`), ErrMalformed},
		{"claims trailing data", rawText(hdr, claimsJSON(t, good)+`{}`), ErrMalformed},
		{"claims invalid UTF-8", rawText(hdr, strings.Replace(claimsJSON(t, good), "alice", "al\xffce", 1)), ErrMalformed},
		{"claims too many members", rawText(hdr, claimsJSON(t, manyMembers(good, 60))), ErrMalformed},
		{"empty", func(t *testing.T) string { return "" }, ErrMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			v := newTestVerifier(t, ks, newClock())
			c, err := v.Verify(context.Background(), tok)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Subject != "u_alice" || c.SessionID != "s_1" || c.Issuer != testIssuer || c.Audience != testAudience {
					t.Fatalf("claims %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error %v (reason %q), want %v", err, Reason(err), tc.want)
			}
			if c != nil {
				t.Fatalf("claims returned with an error")
			}
			if v.cache.len() != 0 {
				t.Fatalf("a refused token was cached")
			}
		})
	}
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func manyMembers(c map[string]any, n int) map[string]any {
	out := with(c)
	for i := range n {
		out["x"+string(rune('A'+i%26))+string(rune('a'+i/26))] = i
	}
	return out
}

func TestVerifyClaimsExact(t *testing.T) {
	ed := newEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.jwk())
	v := newTestVerifier(t, ks, newClock())
	tok := ed.mint(t, with(validClaims(), "auth_time", testEpoch.Unix()-60, "amr", []string{"pwd", "otp"}, "groups", []string{"a"}))
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Issuer: testIssuer, Subject: "u_alice", Audience: testAudience, Expiry: testEpoch.Unix() + 300,
		IssuedAt: testEpoch.Unix(), NotBefore: testEpoch.Unix(), ID: "j_0123456789abcdef", SessionID: "s_1",
		Username: "alice", AuthTime: testEpoch.Unix() - 60, AMR: []string{"pwd", "otp"}, Groups: []string{"a"}}
	if got.Issuer != want.Issuer || got.Subject != want.Subject || got.Audience != want.Audience || got.Expiry != want.Expiry ||
		got.IssuedAt != want.IssuedAt || got.NotBefore != want.NotBefore || got.ID != want.ID || got.SessionID != want.SessionID ||
		got.Username != want.Username || got.AuthTime != want.AuthTime || strings.Join(got.AMR, ",") != "pwd,otp" || strings.Join(got.Groups, ",") != "a" {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestVerifyErrorsCarryClaims(t *testing.T) {
	ed := newEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.jwk())
	v := newTestVerifier(t, ks, newClock())
	_, err := v.Verify(context.Background(), ed.mint(t, with(validClaims(), "aud", "other.localhost")))
	var ce *ClaimsError
	if !errors.As(err, &ce) || ce.Claims.Audience != "other.localhost" || Reason(err) != "claims" {
		t.Fatalf("err %v, want a *ClaimsError with the token's aud", err)
	}
	// Before the signature nothing is trusted, so there are no claims.
	_, err = v.Verify(context.Background(), newEdKey(t, "ed1").mint(t, validClaims()))
	if errors.As(err, &ce) {
		t.Fatalf("signature failure carried claims: %v", err)
	}
}

func TestLeewayConfig(t *testing.T) {
	ed := newEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.jwk())
	now := testEpoch.Unix()
	tok := ed.mint(t, with(validClaims(), "iat", now-300, "nbf", now-300, "exp", now-1))
	cases := []struct {
		name   string
		leeway time.Duration
		want   error
	}{
		{"zero means default 30s", 0, nil},
		{"NoLeeway", NoLeeway, ErrExpired},
		{"explicit 1s", time.Second, nil},
		{"explicit 500ms", 500 * time.Millisecond, ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, ks, newClock(), func(c *Config) { c.Leeway = tc.leeway })
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAlgorithmsConfig(t *testing.T) {
	ed, es := newEdKey(t, "ed1"), newESKey(t, "es1")
	ks, _ := NewStaticKeySet(ed.jwk(), es.jwk())
	v := newTestVerifier(t, ks, newClock(), func(c *Config) { c.Algorithms = []string{wire.AlgES256} })
	if _, err := v.Verify(context.Background(), es.mint(t, validClaims())); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), ed.mint(t, validClaims())); !errors.Is(err, ErrSignature) {
		t.Fatalf("EdDSA accepted by an ES256-only verifier: %v", err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	ks, _ := NewStaticKeySet(newEdKey(t, "k").jwk())
	_, err := NewVerifier(ks, Config{Algorithms: []string{"HS256", "none"}, MaxTokenAge: -1, Leeway: 2 * time.Hour})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"issuer is empty", "audience is empty", `"HS256"`, `"none"`, "negative", "leeway"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewVerifier(nil, Config{Issuer: "x", Audience: "y"}); err == nil {
		t.Error("nil key set accepted")
	}
	if _, err := NewVerifier(ks, Config{Issuer: "x", Audience: "y", Algorithms: []string{}}); err == nil {
		t.Error("empty algorithm list accepted")
	}
}

// countingObserver records what a Verifier reports.
type countingObserver struct {
	mu      sync.Mutex
	reasons map[string]int
	cached  int
}

func (o *countingObserver) Verified(reason string, cached bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.reasons == nil {
		o.reasons = map[string]int{}
	}
	o.reasons[reason]++
	if cached {
		o.cached++
	}
}

func (o *countingObserver) KeySetFetched(string) {}

func TestObserverSeesEveryVerification(t *testing.T) {
	ed := newEdKey(t, "ed1")
	ks, err := NewStaticKeySet(ed.jwk())
	if err != nil {
		t.Fatal(err)
	}
	obs := &countingObserver{}
	v := newTestVerifier(t, ks, newClock(), func(c *Config) { c.Observer = obs })
	tok := ed.mint(t, validClaims())
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = v.Verify(context.Background(), "")
	_, _ = v.Verify(context.Background(), "a.b")
	if obs.reasons[""] != 3 || obs.cached != 2 || obs.reasons["missing"] != 1 || obs.reasons["malformed"] != 1 {
		t.Fatalf("observer saw %v with %d cached", obs.reasons, obs.cached)
	}
}
