package site_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssoecho"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
	"github.com/canopy-sso/canopy/relying/site"
)

// requestRow is one row of testdata/requests/token_choice.json.
type requestRow struct {
	Name          string   `json:"name"`
	Authorization string   `json:"authorization"`
	Cookies       []string `json:"cookies"`
	Want          string   `json:"want"`
}

// verdict is what an entry point decided: the session and user it admitted,
// or that it refused, with the public reason where it says one.
type verdict struct {
	accepted  bool
	sid, user string
	reason    string // "" when the entry point does not say
}

// TestOneRequestPath sends every row of the token-choice table through the
// four entry points that read a request (the net/http middleware, the echo
// middleware, proxy mode and forward auth) and through ssohttp.Authenticate
// itself: each must choose the same token and reach the same verdict, each
// answering in its own way.
func TestOneRequestPath(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	var table struct {
		Rows []requestRow `json:"rows"`
	}
	loadTable(t, "token_choice.json", &table)
	if len(table.Rows) < 20 {
		t.Fatalf("table has %d rows", len(table.Rows))
	}

	log := slog.New(slog.DiscardHandler)
	client := corpusClient(t, doc)

	// The app behind the middleware and the proxy reports who it was told.
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := ssohttp.ClaimsFrom(r.Context()); ok {
			w.Header().Set(site.HeaderSid, c.SessionID)
			w.Header().Set(site.HeaderUser, c.Username)
		}
	})
	mw, err := ssohttp.Middleware(client, ssohttp.MiddlewareConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	emw, err := ssoecho.Middleware(client, ssohttp.MiddlewareConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.GET("/", func(c echo.Context) error {
		app.ServeHTTP(c.Response(), c.Request())
		return nil
	}, emw)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(site.HeaderSid, r.Header.Get(site.HeaderSid))
		w.Header().Set(site.HeaderUser, r.Header.Get(site.HeaderUser))
	}))
	t.Cleanup(upstream.Close)
	upURL, _ := url.Parse(upstream.URL)
	proxy := testSite(t, doc, client, "app.domain.localhost", site.Config{Upstream: upURL})

	fromMiddleware := func(rec *httptest.ResponseRecorder) verdict {
		if rec.Code == http.StatusOK {
			return verdict{accepted: true, sid: rec.Header().Get(site.HeaderSid), user: rec.Header().Get(site.HeaderUser)}
		}
		var body struct{ Reason string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("status %d, want 200 or 401: %.200s", rec.Code, rec.Body)
		}
		return verdict{reason: body.Reason}
	}
	entries := map[string]func(r *http.Request) verdict{
		"authenticate": func(r *http.Request) verdict {
			a, err := ssohttp.AuthenticateWith(client, r)
			if a == nil {
				t.Fatal("Authenticate returned nil")
			}
			if err != nil {
				return verdict{reason: sso.Reason(err)}
			}
			h := r.Header.Get("Authorization")
			if bearer := len(h) >= 7 && strings.EqualFold(h[:7], "bearer "); a.Token == "" || a.Bearer != bearer {
				t.Errorf("Authentication %+v does not say how the token came", a)
			}
			return verdict{accepted: true, sid: a.Claims.SessionID, user: a.Claims.Username}
		},
		"net/http middleware": func(r *http.Request) verdict {
			rec := httptest.NewRecorder()
			mw(app).ServeHTTP(rec, r)
			return fromMiddleware(rec)
		},
		"echo middleware": func(r *http.Request) verdict {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, r)
			return fromMiddleware(rec)
		},
		"proxy mode": func(r *http.Request) verdict {
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			return fromMiddleware(rec)
		},
		"forward auth": func(r *http.Request) verdict {
			r.URL.Path = site.AuthPath
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			switch rec.Code {
			case http.StatusOK:
				return verdict{accepted: true, sid: rec.Header().Get(site.HeaderSid), user: rec.Header().Get(site.HeaderUser)}
			case http.StatusUnauthorized:
				return verdict{}
			}
			t.Errorf("forward auth: status %d, want 200 or 401", rec.Code)
			return verdict{}
		},
	}

	for _, row := range table.Rows {
		t.Run(row.Name, func(t *testing.T) {
			want := verdict{reason: row.Want}
			if name, ok := strings.CutPrefix(row.Want, "accept:"); ok {
				c := tokens[name].claims
				want = verdict{accepted: true, sid: c.sid, user: c.user}
			}
			for entry, run := range entries {
				r := httptest.NewRequest("GET", "http://app.domain.localhost/", nil)
				if row.Authorization != "" {
					r.Header.Set("Authorization", expandTokens(row.Authorization, tokens))
				}
				for _, name := range row.Cookies {
					r.Header.Add("Cookie", "canopy="+tokens[name].token)
				}
				got := run(r)
				if got.accepted != want.accepted || got.sid != want.sid || got.user != want.user ||
					(got.reason != "" && got.reason != want.reason) || (!got.accepted && entry != "forward auth" && got.reason == "") {
					t.Errorf("%s: got %+v, want %+v", entry, got, want)
				}
			}
		})
	}
}

type namedToken struct {
	token  string
	claims struct{ sid, user string }
}

// mintNamedTokens signs the table's named tokens with the corpus's EdDSA key.
func mintNamedTokens(t *testing.T, doc *corpusFile) map[string]namedToken {
	data, err := os.ReadFile(filepath.Join(corpusDir, "private.json"))
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	var key *jose.JSONWebKey
	for i := range set.Keys {
		if set.Keys[i].Algorithm == "EdDSA" {
			key = &set.Keys[i]
			break
		}
	}
	if key == nil {
		t.Fatal("no EdDSA key in private.json")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", key.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(user, sid string, iat, exp int64, extra ...any) namedToken {
		claims := map[string]any{
			"iss": doc.Issuer, "aud": doc.Audience, "sub": "u_" + user, "sid": sid, "preferred_username": user,
			"iat": iat, "nbf": iat, "exp": exp, "jti": "j" + user + sid + string(rune('a'+exp%26)),
		}
		for i := 0; i+1 < len(extra); i += 2 {
			claims[extra[i].(string)] = extra[i+1]
		}
		payload, _ := json.Marshal(claims)
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		n := namedToken{token: tok}
		n.claims.sid, n.claims.user = sid, user
		return n
	}
	now := doc.Now
	out := map[string]namedToken{
		"alice":       mint("alice", "s_alice", now-60, now+240),
		"alice-later": mint("alice", "s_alice", now-10, now+290),
		"alice-other": mint("alice", "s_alice2", now-60, now+240),
		"bob":         mint("bob", "s_bob", now-60, now+240, "session_exp", now+3600),
		// A session at its absolute end in a second: its last token expires then too.
		"alice-ending":  mint("alice", "s_alice3", now-60, now+1, "session_exp", now+1),
		"alice-expired": mint("alice", "s_alice", now-400, now-100),
		"bob-expired":   mint("bob", "s_bob", now-400, now-100),
	}
	out["garbage"] = namedToken{token: "not.a.token"}
	return out
}

// expandTokens replaces each {name} in s with that token.
func expandTokens(s string, tokens map[string]namedToken) string {
	for name, tok := range tokens {
		s = strings.ReplaceAll(s, "{"+name+"}", tok.token)
	}
	return s
}
