package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

func oidcClient(id, name string, public bool) store.Client {
	c := store.Client{
		ID: id, Name: name, Public: public,
		RedirectURIs:           []string{"https://" + name + ".example.com/cb", "http://127.0.0.1:9000/cb"},
		PostLogoutRedirectURIs: []string{"https://" + name + ".example.com/bye"},
		BackchannelLogoutURI:   "https://" + name + ".example.com/bcl",
		IDTokenAlg:             "RS256", RequireGroups: []string{"admins", "ops"}, CreatedAt: base,
	}
	if !public {
		c.SecretHash = hash("secret of " + name)
	}
	return c
}

func checkClient(t *testing.T, what string, got, want store.Client) {
	t.Helper()
	g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if got.CreatedAt.Equal(want.CreatedAt) {
		got.CreatedAt = want.CreatedAt
	}
	if (got.SecretRotatedAt == nil) != (want.SecretRotatedAt == nil) ||
		(got.SecretRotatedAt != nil && !got.SecretRotatedAt.Equal(*want.SecretRotatedAt)) {
		t.Errorf("%s: secret rotated at %v, want %v", what, got.SecretRotatedAt, want.SecretRotatedAt)
	}
	got.SecretRotatedAt, want.SecretRotatedAt = nil, nil
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func testClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	conf := oidcClient("client-conf", "grafana", false)
	pub := oidcClient("client-pub", "spa", true)
	pub.PostLogoutRedirectURIs, pub.RequireGroups, pub.BackchannelLogoutURI = nil, nil, ""
	if got, err := s.ListClients(ctx); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("ListClients of a new store = %v, %v; want an empty list", got, err)
	}
	for _, c := range []store.Client{conf, pub} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatalf("CreateClient(%s): %v", c.Name, err)
		}
	}
	pub.PostLogoutRedirectURIs, pub.RequireGroups = []string{}, []string{}
	got, err := s.ClientByID(ctx, conf.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkClient(t, "ClientByID", got, conf)
	if got, err = s.ClientByName(ctx, "spa"); err != nil {
		t.Fatal(err)
	}
	checkClient(t, "ClientByName", got, pub)
	list, err := s.ListClients(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "grafana" || list[1].Name != "spa" {
		t.Fatalf("ListClients = %+v, %v", list, err)
	}

	// Names and ids are unique.
	dupName := oidcClient("client-other", "grafana", false)
	wantErr(t, "CreateClient with a taken name", s.CreateClient(ctx, dupName), store.ErrConflict)
	dupID := oidcClient("client-conf", "other", false)
	wantErr(t, "CreateClient with a taken id", s.CreateClient(ctx, dupID), store.ErrConflict)
	// A confidential client needs a secret, a public one has none.
	noSecret := oidcClient("client-x", "x", false)
	noSecret.SecretHash = ""
	if err := s.CreateClient(ctx, noSecret); err == nil {
		t.Error("CreateClient accepted a confidential client without a secret")
	}
	if err := s.CreateClient(ctx, store.Client{ID: "y", Name: "y", SecretHash: "h", CreatedAt: base}); err == nil {
		t.Error("CreateClient accepted a client without a redirect URI")
	}

	// Rotating the secret: confidential clients only.
	at := base.Add(time.Hour)
	if err := s.SetClientSecret(ctx, conf.ID, hash("new"), at); err != nil {
		t.Fatal(err)
	}
	conf.SecretHash, conf.SecretRotatedAt = hash("new"), &at
	got, _ = s.ClientByID(ctx, conf.ID)
	checkClient(t, "after SetClientSecret", got, conf)
	wantErr(t, "SetClientSecret of a public client", s.SetClientSecret(ctx, pub.ID, hash("x"), at), store.ErrNotFound)
	wantErr(t, "SetClientSecret of an unknown client", s.SetClientSecret(ctx, "nope", hash("x"), at), store.ErrNotFound)

	wantErr(t, "RemoveClient unknown", s.RemoveClient(ctx, "nope"), store.ErrNotFound)
	if err := s.RemoveClient(ctx, pub.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.ClientByID(ctx, pub.ID)
	wantErr(t, "ClientByID after RemoveClient", err, store.ErrNotFound)
	// The name is free again.
	if err := s.CreateClient(ctx, oidcClient("client-pub2", "spa", true)); err != nil {
		t.Errorf("CreateClient with a removed client's name: %v", err)
	}
}

func authCode(code string, c store.Client, u store.User, at time.Time) store.AuthCode {
	return store.AuthCode{
		Hash: hash(code), ClientID: c.ID, UserID: u.ID, SessionID: "sid-" + code, RedirectURI: c.RedirectURIs[0],
		Scope: "openid profile", Nonce: "n-" + code, CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		AuthTime: at.Add(-time.Minute), AMR: []string{"pwd"}, CreatedAt: at, ExpiresAt: at.Add(time.Minute),
	}
}

func clientToken(tok, code string, c store.Client, u store.User, at time.Time) store.ClientToken {
	return store.ClientToken{Hash: hash(tok), CodeHash: hash(code), ClientID: c.ID, UserID: u.ID, SessionID: "sid-" + code,
		Scope: "openid", CreatedAt: at, ExpiresAt: at.Add(5 * time.Minute)}
}

func testCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	c := oidcClient("client-conf", "grafana", false)
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	code := authCode("code-1", c, alice, base)
	if err := s.CreateCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateCode twice", s.CreateCode(ctx, code), store.ErrConflict)
	wantErr(t, "CreateCode of an unknown client", s.CreateCode(ctx, authCode("code-x", oidcClient("ghost", "ghost", false), alice, base)), store.ErrNotFound)

	_, err := s.RedeemCode(ctx, hash("unknown"), base)
	wantErr(t, "RedeemCode unknown", err, store.ErrNotFound)
	got, err := s.RedeemCode(ctx, code.Hash, base.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got.UsedAt == nil || !got.UsedAt.Equal(base.Add(time.Second)) || got.Nonce != code.Nonce || got.CodeChallenge != code.CodeChallenge ||
		got.RedirectURI != code.RedirectURI || !slices.Equal(got.AMR, code.AMR) || !got.AuthTime.Equal(code.AuthTime) ||
		!got.ExpiresAt.Equal(code.ExpiresAt) || got.SessionID != code.SessionID || got.Scope != code.Scope {
		t.Errorf("RedeemCode = %+v, want %+v used", got, code)
	}
	tok := clientToken("tok-1", "code-1", c, alice, base.Add(time.Second))
	if err := s.CreateClientToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClientToken(ctx, tok.Hash, base.Add(time.Minute)); err != nil || got.ClientID != c.ID || got.UserID != alice.ID || got.Scope != "openid" {
		t.Fatalf("ClientToken = %+v, %v", got, err)
	}
	_, err = s.ClientToken(ctx, tok.Hash, tok.ExpiresAt)
	wantErr(t, "ClientToken at its expiry", err, store.ErrNotFound)

	// A replay revokes what the code issued.
	_, err = s.RedeemCode(ctx, code.Hash, base.Add(2*time.Second))
	wantErr(t, "RedeemCode replayed", err, store.ErrReuse)
	_, err = s.ClientToken(ctx, tok.Hash, base.Add(time.Minute))
	wantErr(t, "ClientToken after the code's replay", err, store.ErrNotFound)

	// Removing the client ends its tokens and codes.
	code2 := authCode("code-2", c, alice, base)
	tok2 := clientToken("tok-2", "code-2", c, alice, base)
	if err := s.CreateCode(ctx, code2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClientToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.ClientToken(ctx, tok2.Hash, base)
	wantErr(t, "ClientToken of a removed client", err, store.ErrNotFound)
	_, err = s.RedeemCode(ctx, code2.Hash, base)
	wantErr(t, "RedeemCode of a removed client", err, store.ErrNotFound)
}

// testCodeRace: of 20 concurrent redemptions of one code exactly one wins;
// the others see reuse.
func testCodeRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	c := oidcClient("client-conf", "grafana", false)
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	code := authCode("code-race", c, alice, base)
	if err := s.CreateCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	var won, reused, other atomic.Int32
	Barrier(20, func(int) {
		_, err := s.RedeemCode(ctx, code.Hash, base.Add(time.Second))
		switch {
		case err == nil:
			won.Add(1)
		case errors.Is(err, store.ErrReuse):
			reused.Add(1)
		default:
			other.Add(1)
			t.Errorf("RedeemCode: %v", err)
		}
	})
	if won.Load() != 1 || reused.Load() != 19 || other.Load() != 0 {
		t.Errorf("won %d, reused %d, other %d; want 1, 19, 0", won.Load(), reused.Load(), other.Load())
	}
}
