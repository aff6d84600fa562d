// Package oidctest runs a real OpenID provider on loopback for tests: the
// op package of zitadel/oidc (an OpenID-certified library) with the
// module's example storage and its own login page. Only tests import it,
// so the issuer and relying binaries never link the provider.
package oidctest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Mode says what the token endpoint does to the provider's real answer.
// The provider itself never signs a bad id_token, so the rows of a hostile
// table that need one (and only those) get it re-signed here.
type Mode string

const (
	Real         Mode = ""               // the provider's answer as it is
	AlgNone      Mode = "alg_none"       // the id_token unsigned, alg "none"
	HS256Secret  Mode = "hs256_secret"   // signed HS256 keyed with the client secret
	WrongAud     Mode = "wrong_audience" // valid signature, aud another client
	WrongIssuer  Mode = "wrong_issuer"   // valid signature, iss another issuer
	Expired      Mode = "expired"        // valid signature, exp an hour ago
	WrongNonce   Mode = "wrong_nonce"    // valid signature, another nonce
	Garbage      Mode = "garbage"        // the token endpoint answers HTML
	Slow         Mode = "slow"           // the token endpoint answers after Options.Delay
	NoToken      Mode = "no_id_token"    // a token response without id_token
	DownDiscover Mode = "down"           // every endpoint answers 503
)

// Options configure a provider.
type Options struct {
	// Users is a JSON file of the example storage's users (map id → user).
	Users string
	// Groups lists each user's groups (by user id), sent as the "groups"
	// claim in the id_token and the userinfo answer.
	Groups map[string][]string
	// Host is the issuer's host; 127.0.0.1 when empty (idp.localhost works
	// for Chromium, which maps *.localhost to loopback).
	Host string
	// Delay is how long the Slow mode waits.
	Delay time.Duration
}

// Provider is a running provider.
type Provider struct {
	URL          string // the issuer
	ClientID     string
	ClientSecret string
	server       *httptest.Server
	forger       *rsa.PrivateKey
	delay        time.Duration

	mu   sync.Mutex
	mode Mode
}

// Start runs a provider until the test ends. Its client (ClientID,
// ClientSecret) exists once Register names its redirect URIs.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	us, err := storage.StoreFromFile(o.Users)
	if err != nil {
		t.Fatalf("oidctest: users: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p := &Provider{URL: "http://" + host + ":" + port, ClientID: "canopy-" + rand.Text()[:8], ClientSecret: rand.Text(),
		delay: o.Delay}
	if p.forger, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	st := &groupStorage{Storage: storage.NewStorage(us), groups: o.Groups}
	router := exampleop.SetupServer(p.URL, st, nil, false)
	p.server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: p.wrap(router), ReadHeaderTimeout: 10 * time.Second}}
	p.server.Start()
	t.Cleanup(p.server.Close)
	return p
}

// Register creates the provider's client with these redirect URIs; call it
// once, before the first sign-in (the example storage's client list is a
// package-level map, written here and read by the provider).
func (p *Provider) Register(redirectURI ...string) {
	storage.RegisterClients(storage.WebClient(p.ClientID, p.ClientSecret, redirectURI...))
}

// SetMode changes what the next token responses are.
func (p *Provider) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
}

func (p *Provider) currentMode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// groupStorage adds the "groups" claim to the example storage's answers.
type groupStorage struct {
	*storage.Storage
	groups map[string][]string
}

func (g *groupStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	if err := g.Storage.SetUserinfoFromRequest(ctx, ui, r, scopes); err != nil {
		return err
	}
	if gs, ok := g.groups[r.GetSubject()]; ok {
		ui.AppendClaims("groups", gs)
	}
	return nil
}

func (g *groupStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := g.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	if gs, ok := g.groups[ui.Subject]; ok {
		ui.AppendClaims("groups", gs)
	}
	return nil
}

// wrap applies the mode: the forged key joins the provider's key set, and
// the token endpoint's id_token is re-signed as the mode says.
func (p *Provider) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := p.currentMode()
		if mode == DownDiscover {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		switch {
		case r.URL.Path == "/keys":
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &p.forger.PublicKey, KeyID: "forger", Algorithm: "RS256", Use: "sig"})
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(set)
		case r.URL.Path == "/oauth/token" && mode != Real:
			p.token(w, r, next, mode)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request, next http.Handler, mode Mode) {
	switch mode {
	case Garbage:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		return
	case Slow:
		select {
		case <-time.After(p.delay):
		case <-r.Context().Done():
		}
		http.Error(w, "too late", http.StatusGatewayTimeout)
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	raw, _ := body["id_token"].(string)
	if mode == NoToken {
		delete(body, "id_token")
	} else if forged, err := p.forge(raw, mode); err == nil {
		body["id_token"] = forged
	} else {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// forge re-signs the real id_token's claims as mode says.
func (p *Provider) forge(raw string, mode Mode) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("oidctest: the provider's id_token is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", err
	}
	switch mode {
	case WrongAud:
		claims["aud"] = []string{"another-client"}
		claims["azp"] = "another-client"
	case WrongIssuer:
		claims["iss"] = "https://evil.example"
	case Expired:
		claims["exp"] = time.Now().Add(-time.Hour).Unix()
		claims["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	case WrongNonce:
		claims["nonce"] = "not-the-nonce"
	}
	payload, err = json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding.EncodeToString
	switch mode {
	case AlgNone:
		return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + ".", nil
	case HS256Secret:
		// What a client that trusts the header's alg would accept: an HMAC
		// under the client secret, which the client itself knows.
		head := enc([]byte(`{"alg":"HS256","kid":"forger","typ":"JWT"}`)) + "." + enc(payload)
		m := hmac.New(sha256.New, []byte(p.ClientSecret))
		m.Write([]byte(head))
		return head + "." + enc(m.Sum(nil)), nil
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.forger},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "forger"))
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Login runs a person's sign-in at the provider's own login page without
// a browser: from the authorization URL to the redirect back to the
// client, whose URL it returns (not followed).
func (p *Provider) Login(authURL, username, password string) (string, error) {
	c := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	loc := authURL
	for range 10 {
		resp, err := c.Get(loc)
		if err != nil {
			return "", err
		}
		_ = resp.Body.Close()
		next := resp.Header.Get("Location")
		if next == "" {
			return "", fmt.Errorf("oidctest: %s answered %d without a redirect", loc, resp.StatusCode)
		}
		u, err := resp.Request.URL.Parse(next)
		if err != nil {
			return "", err
		}
		if u.Path == "/login/username" {
			id := u.Query().Get("authRequestID")
			resp, err := c.PostForm(p.URL+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {password}})
			if err != nil {
				return "", err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				return "", fmt.Errorf("oidctest: login as %s: status %d", username, resp.StatusCode)
			}
			u, err = resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return "", err
			}
		}
		if !strings.HasPrefix(u.String(), p.URL) {
			return u.String(), nil // back to the client
		}
		loc = u.String()
	}
	return "", fmt.Errorf("oidctest: too many redirects from %s", authURL)
}
