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

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func newTestVerifier(t testing.TB, ks KeySet, clk *ssotest.Clock, mod ...func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Issuer: ssotest.Issuer, Audience: ssotest.Audience, Now: clk.Now, Revoked: ssotest.RevokedSet{"s_revoked": true}}
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
	ed := ssotest.NewEdKey(t, "ed1")
	es := ssotest.NewESKey(t, "es1")
	ed2 := ssotest.NewEdKey(t, "ed2") // published, but not the key tokens claim
	attacker := ssotest.NewEdKey(t, "ed1")
	ks, err := NewStaticKeySet(ed.JWK(), es.JWK(), ed2.JWK())
	if err != nil {
		t.Fatal(err)
	}
	now := ssotest.Epoch.Unix()
	good := ssotest.ValidClaims()
	old := ssotest.With(good, "iat", now-300, "nbf", now-300) // issued five minutes ago
	hdr := ed.Header()
	raw := func(header string, claims map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return ed.SignRaw(t, header, ssotest.ClaimsJSON(t, claims)) }
	}
	rawText := func(header, claims string) func(t *testing.T) string {
		return func(t *testing.T) string { return ed.SignRaw(t, header, claims) }
	}
	attackerCert := func(t *testing.T) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"}, NotAfter: ssotest.Epoch.Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, attacker.Priv.Public(), attacker.Priv)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	attackerJWK := func() string {
		b, _ := attacker.JWK().MarshalJSON()
		return string(b)
	}

	cases := []struct {
		name  string
		token func(t *testing.T) string
		want  error // nil: accepted
	}{
		{"valid EdDSA (go-jose)", func(t *testing.T) string { return ed.Mint(t, good) }, nil},
		{"valid ES256 (go-jose)", func(t *testing.T) string { return es.Mint(t, good) }, nil},
		{"valid raw EdDSA", raw(hdr, good), nil},
		{"valid ES256 raw", func(t *testing.T) string { return es.SignRaw(t, es.Header(), ssotest.ClaimsJSON(t, good)) }, nil},
		{"whitespace in JSON", rawText(`{ "alg" : "EdDSA" , "kid":"ed1","typ":"at+jwt" }`, "\n"+ssotest.ClaimsJSON(t, good)+" "), nil},
		{"unknown claims ignored", raw(hdr, ssotest.With(good, "x", map[string]any{"a": []any{1, "b"}}, "amr", []string{"pwd"}, "groups", []string{"admin"})), nil},
		{"within leeway", raw(hdr, ssotest.With(old, "exp", now-29)), nil},
		{"at leeway edge", raw(hdr, ssotest.With(old, "exp", now-30)), nil},
		{"expired beyond leeway", raw(hdr, ssotest.With(old, "exp", now-31)), ErrExpired},
		{"nbf within leeway", raw(hdr, ssotest.With(good, "nbf", now+29)), nil},
		{"nbf in future", raw(hdr, ssotest.With(good, "nbf", now+31)), ErrClaims},
		{"iat in future", raw(hdr, ssotest.With(good, "iat", now+31, "exp", now+60)), ErrClaims},
		{"exp-iat over max", raw(hdr, ssotest.With(good, "iat", now-10, "exp", now-10+3601)), ErrClaims},
		{"exp-iat at max", raw(hdr, ssotest.With(good, "iat", now-10, "exp", now-10+3600)), nil},
		{"exp before iat", raw(hdr, ssotest.With(good, "exp", now-1)), ErrClaims},
		{"wrong iss", raw(hdr, ssotest.With(good, "iss", "http://evil.localhost")), ErrClaims},
		{"wrong aud", raw(hdr, ssotest.With(good, "aud", "other.localhost")), ErrClaims},
		{"aud array", raw(hdr, ssotest.With(good, "aud", []string{ssotest.Audience})), ErrClaims},
		{"iss number", raw(hdr, ssotest.With(good, "iss", 1)), ErrClaims},
		{"exp float", raw(hdr, ssotest.With(good, "exp", 1.5)), ErrClaims},
		{"exp fraction", rawText(hdr, strings.Replace(ssotest.ClaimsJSON(t, good), `"exp":1800000300`, `"exp":1800000300.0`, 1)), ErrClaims},
		{"exp exponent", rawText(hdr, strings.Replace(ssotest.ClaimsJSON(t, good), `"exp":1800000300`, `"exp":18000003e2`, 1)), ErrClaims},
		{"exp string", raw(hdr, ssotest.With(good, "exp", "1800000300")), ErrClaims},
		{"exp null", rawText(hdr, strings.Replace(ssotest.ClaimsJSON(t, good), `"exp":1800000300`, `"exp":null`, 1)), ErrClaims},
		{"exp negative", raw(hdr, ssotest.With(good, "exp", -1)), ErrClaims},
		{"exp huge", raw(hdr, ssotest.With(good, "exp", int64(1e15))), ErrClaims},
		{"exp missing", raw(hdr, ssotest.With(good, "exp", nil)), ErrClaims},
		{"iat missing", raw(hdr, ssotest.With(good, "iat", nil)), ErrClaims},
		{"nbf missing", raw(hdr, ssotest.With(good, "nbf", nil)), ErrClaims},
		{"sub missing", raw(hdr, ssotest.With(good, "sub", nil)), ErrClaims},
		{"sub empty", raw(hdr, ssotest.With(good, "sub", "")), ErrClaims},
		{"sub number", raw(hdr, ssotest.With(good, "sub", 7)), ErrClaims},
		{"sid missing", raw(hdr, ssotest.With(good, "sid", nil)), ErrClaims},
		{"jti missing", raw(hdr, ssotest.With(good, "jti", nil)), ErrClaims},
		{"groups not array", raw(hdr, ssotest.With(good, "groups", "admin")), ErrClaims},
		{"groups of numbers", raw(hdr, ssotest.With(good, "groups", []int{1})), ErrClaims},
		{"idp a string", raw(hdr, ssotest.With(good, "idp", "corp", "amr", []string{"fed"})), nil},
		{"idp not a string", raw(hdr, ssotest.With(good, "idp", []string{"corp"})), ErrClaims},
		{"revoked sid", raw(hdr, ssotest.With(good, "sid", "s_revoked")), ErrRevoked},
		{"duplicate key in header", rawText(`{"alg":"EdDSA","kid":"ed1","kid":"ed2","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"duplicate alg in header", rawText(`{"alg":"ES256","kid":"ed1","typ":"at+jwt","alg":"EdDSA"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"duplicate escaped key in header", rawText(`{"alg":"EdDSA","kid":"ed1","typ":"at+jwt","\u0061lg":"EdDSA"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"duplicate key in claims", rawText(hdr, `{"sub":"u_bob",`+ssotest.ClaimsJSON(t, good)[1:]), ErrMalformed},
		{"duplicate escaped key in claims", rawText(hdr, `{"\u0073ub":"u_bob",`+ssotest.ClaimsJSON(t, good)[1:]), ErrMalformed},
		{"upper-case header key", rawText(`{"ALG":"EdDSA","kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"upper-case claim key", rawText(hdr, strings.Replace(ssotest.ClaimsJSON(t, good), `"sub"`, `"SUB"`, 1)), ErrClaims},
		{"crit", rawText(`{"alg":"EdDSA","crit":["exp"],"exp":1,"kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"b64 false", rawText(`{"alg":"EdDSA","b64":false,"kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"typ JWT", rawText(`{"alg":"EdDSA","kid":"ed1","typ":"JWT"}`, ssotest.ClaimsJSON(t, good)), ErrClaims},
		{"typ upper case", rawText(`{"alg":"EdDSA","kid":"ed1","typ":"AT+JWT"}`, ssotest.ClaimsJSON(t, good)), ErrClaims},
		{"typ missing", rawText(`{"alg":"EdDSA","kid":"ed1"}`, ssotest.ClaimsJSON(t, good)), ErrClaims},
		{"alg none", func(t *testing.T) string {
			return ssotest.B64(`{"alg":"none","kid":"ed1","typ":"at+jwt"}`) + "." + ssotest.B64(ssotest.ClaimsJSON(t, good)) + ".AAAA"
		}, ErrSignature},
		{"alg none empty signature", func(t *testing.T) string {
			return ssotest.B64(`{"alg":"none","kid":"ed1","typ":"at+jwt"}`) + "." + ssotest.B64(ssotest.ClaimsJSON(t, good)) + "."
		}, ErrMalformed},
		{"alg HS256", rawText(`{"alg":"HS256","kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrSignature},
		{"alg RS256", rawText(`{"alg":"RS256","kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrSignature},
		{"alg number", rawText(`{"alg":1,"kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrSignature},
		{"alg missing", rawText(`{"kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"alg not the key's", func(t *testing.T) string {
			return es.SignRaw(t, `{"alg":"ES256","kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good))
		}, ErrSignature},
		{"kid unknown", rawText(`{"alg":"EdDSA","kid":"nope","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrUnknownKey},
		{"kid missing", rawText(`{"alg":"EdDSA","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"kid empty", rawText(`{"alg":"EdDSA","kid":"","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"kid number", rawText(`{"alg":"EdDSA","kid":1,"typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"other published key's kid", func(t *testing.T) string {
			return ed.SignRaw(t, `{"alg":"EdDSA","kid":"ed2","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good))
		}, ErrSignature},
		{"signed by a key not in the set", func(t *testing.T) string { return attacker.Mint(t, good) }, ErrSignature},
		{"jwk header with attacker key", func(t *testing.T) string {
			return attacker.SignRaw(t, `{"alg":"EdDSA","jwk":`+attackerJWK()+`,"kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good))
		}, ErrSignature},
		{"jku header", func(t *testing.T) string {
			return attacker.SignRaw(t, `{"alg":"EdDSA","jku":"http://evil.localhost/jwks","kid":"ed1","typ":"at+jwt"}`, ssotest.ClaimsJSON(t, good))
		}, ErrSignature},
		{"x5u header", func(t *testing.T) string {
			return attacker.SignRaw(t, `{"alg":"EdDSA","kid":"ed1","typ":"at+jwt","x5u":"http://evil.localhost/cert"}`, ssotest.ClaimsJSON(t, good))
		}, ErrSignature},
		{"x5c header with attacker cert", func(t *testing.T) string {
			return attacker.SignRaw(t, `{"alg":"EdDSA","kid":"ed1","typ":"at+jwt","x5c":["`+attackerCert(t)+`"]}`, ssotest.ClaimsJSON(t, good))
		}, ErrSignature},
		{"newline inside a segment", func(t *testing.T) string {
			tok := ed.Mint(t, good)
			return tok[:10] + "\n" + tok[10:]
		}, ErrMalformed},
		{"CR inside the signature", func(t *testing.T) string {
			tok := ed.Mint(t, good)
			return tok[:len(tok)-5] + "\r" + tok[len(tok)-5:]
		}, ErrMalformed},
		{"space at the end", func(t *testing.T) string { return ed.Mint(t, good) + " " }, ErrMalformed},
		{"padded header", func(t *testing.T) string {
			tok := rawText(`{"alg":"EdDSA","kid":"ed1","typ":"at+jwt" }`, ssotest.ClaimsJSON(t, good))(t)
			h, rest, _ := strings.Cut(tok, ".")
			padded := base64.URLEncoding.EncodeToString(mustB64(t, h))
			if !strings.HasSuffix(padded, "=") {
				t.Fatal("test header needs padding")
			}
			return padded + "." + rest
		}, ErrMalformed},
		{"standard alphabet +", func(t *testing.T) string { tok := ed.Mint(t, good); return tok[:5] + "+" + tok[6:] }, ErrMalformed},
		{"standard alphabet /", func(t *testing.T) string { tok := ed.Mint(t, good); return tok[:len(tok)-3] + "/" + tok[len(tok)-2:] }, ErrMalformed},
		{"non-canonical signature", func(t *testing.T) string {
			tok := ed.Mint(t, good)
			last := tok[len(tok)-1]
			return tok[:len(tok)-1] + string(alphabet[b64val[last]|1])
		}, ErrMalformed},
		{"non-canonical header", func(t *testing.T) string {
			tok := rawText(`{"alg":"EdDSA","kid":"ed1","typ":"at+jwt"} `, ssotest.ClaimsJSON(t, good))(t)
			h, rest, _ := strings.Cut(tok, ".")
			if len(h)%4 == 0 {
				t.Fatal("header length must not be a multiple of 4 for this case")
			}
			return h[:len(h)-1] + string(alphabet[b64val[h[len(h)-1]]|1]) + "." + rest
		}, ErrMalformed},
		{"length 1 mod 4", func(t *testing.T) string {
			tok := ed.Mint(t, good)
			h, rest, _ := strings.Cut(tok, ".")
			for len(h)%4 != 1 {
				h += "A"
			}
			return h + "." + rest
		}, ErrMalformed},
		{"5000 dots", func(t *testing.T) string { return strings.Repeat(".", 5000) }, ErrMalformed},
		{"4 segments", func(t *testing.T) string { return ed.Mint(t, good) + ".AAAA" }, ErrMalformed},
		{"2 segments", func(t *testing.T) string { return ssotest.B64(hdr) + "." + ssotest.B64(ssotest.ClaimsJSON(t, good)) }, ErrMalformed},
		{"empty payload", func(t *testing.T) string {
			tok := ed.Mint(t, good)
			parts := strings.Split(tok, ".")
			return parts[0] + ".." + parts[2]
		}, ErrMalformed},
		{"over size cap", func(t *testing.T) string {
			return ed.SignRaw(t, hdr, ssotest.ClaimsJSON(t, ssotest.With(good, "pad", strings.Repeat("x", 4096))))
		}, ErrMalformed},
		{"JSON serialization", func(t *testing.T) string {
			return `{"payload":"` + ssotest.B64(ssotest.ClaimsJSON(t, good)) + `","protected":"` + ssotest.B64(hdr) + `","signature":"AAAA"}`
		}, ErrMalformed},
		{"header not JSON", rawText(`alg=wire.AlgEdDSA`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"header array", rawText(`["alg","EdDSA"]`, ssotest.ClaimsJSON(t, good)), ErrMalformed},
		{"claims array", rawText(hdr, `[1,2]`), ErrMalformed},
		{"claims trailing data", rawText(hdr, ssotest.ClaimsJSON(t, good)+`{}`), ErrMalformed},
		{"claims invalid UTF-8", rawText(hdr, strings.Replace(ssotest.ClaimsJSON(t, good), "alice", "al\xffce", 1)), ErrMalformed},
		{"claims too many members", rawText(hdr, ssotest.ClaimsJSON(t, manyMembers(good, 60))), ErrMalformed},
		{"empty", func(t *testing.T) string { return "" }, ErrMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			v := newTestVerifier(t, ks, ssotest.NewClock())
			c, err := v.Verify(context.Background(), tok)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Subject != "u_alice" || c.SessionID != "s_1" || c.Issuer != ssotest.Issuer || c.Audience != ssotest.Audience {
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
	out := ssotest.With(c)
	for i := range n {
		out["x"+string(rune('A'+i%26))+string(rune('a'+i/26))] = i
	}
	return out
}

func TestVerifyClaimsExact(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	v := newTestVerifier(t, ks, ssotest.NewClock())
	tok := ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "auth_time", ssotest.Epoch.Unix()-60, "amr", []string{"pwd", "otp"}, "groups", []string{"a"},
		"session_exp", ssotest.Epoch.Unix()+3600))
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Issuer: ssotest.Issuer, Subject: "u_alice", Audience: ssotest.Audience, Expiry: ssotest.Epoch.Unix() + 300,
		IssuedAt: ssotest.Epoch.Unix(), NotBefore: ssotest.Epoch.Unix(), ID: "j_0123456789abcdef", SessionID: "s_1",
		Username: "alice", AuthTime: ssotest.Epoch.Unix() - 60, AMR: []string{"pwd", "otp"}, Groups: []string{"a"},
		SessionExpiry: ssotest.Epoch.Unix() + 3600}
	if got.SessionExpiry != want.SessionExpiry || got.Issuer != want.Issuer || got.Subject != want.Subject || got.Audience != want.Audience || got.Expiry != want.Expiry ||
		got.IssuedAt != want.IssuedAt || got.NotBefore != want.NotBefore || got.ID != want.ID || got.SessionID != want.SessionID ||
		got.Username != want.Username || got.AuthTime != want.AuthTime || strings.Join(got.AMR, ",") != "pwd,otp" || strings.Join(got.Groups, ",") != "a" {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// TestVerifySessionExpiryType: session_exp is a NumericDate like exp; any
// other JSON type is a claims error, as for every known claim.
func TestVerifySessionExpiryType(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	v := newTestVerifier(t, ks, ssotest.NewClock())
	for _, bad := range []any{"1796508770", 1.5, []int64{1}, true} {
		_, err := v.Verify(context.Background(), ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "session_exp", bad)))
		if Reason(err) != "claims" {
			t.Errorf("session_exp %v: err %v, want a claims error", bad, err)
		}
	}
}

func TestVerifyErrorsCarryClaims(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	v := newTestVerifier(t, ks, ssotest.NewClock())
	_, err := v.Verify(context.Background(), ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "aud", "other.localhost")))
	var ce *ClaimsError
	if !errors.As(err, &ce) || ce.Claims.Audience != "other.localhost" || Reason(err) != "claims" {
		t.Fatalf("err %v, want a *ClaimsError with the token's aud", err)
	}
	// Before the signature nothing is trusted, so there are no claims.
	_, err = v.Verify(context.Background(), ssotest.NewEdKey(t, "ed1").Mint(t, ssotest.ValidClaims()))
	if errors.As(err, &ce) {
		t.Fatalf("signature failure carried claims: %v", err)
	}
}

func TestLeewayConfig(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	now := ssotest.Epoch.Unix()
	tok := ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "iat", now-300, "nbf", now-300, "exp", now-1))
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
			v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.Leeway = tc.leeway })
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAlgorithmsConfig(t *testing.T) {
	ed, es := ssotest.NewEdKey(t, "ed1"), ssotest.NewESKey(t, "es1")
	ks, _ := NewStaticKeySet(ed.JWK(), es.JWK())
	v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.Algorithms = []string{wire.AlgES256} })
	if _, err := v.Verify(context.Background(), es.Mint(t, ssotest.ValidClaims())); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), ed.Mint(t, ssotest.ValidClaims())); !errors.Is(err, ErrSignature) {
		t.Fatalf("EdDSA accepted by an ES256-only verifier: %v", err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	ks, _ := NewStaticKeySet(ssotest.NewEdKey(t, "k").JWK())
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
	ed := ssotest.NewEdKey(t, "ed1")
	ks, err := NewStaticKeySet(ed.JWK())
	if err != nil {
		t.Fatal(err)
	}
	obs := &countingObserver{}
	v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.Observer = obs })
	tok := ed.Mint(t, ssotest.ValidClaims())
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
