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
		AuthTime: at.Add(-time.Minute), AMR: []string{"pwd"}, ACR: "mfa", CreatedAt: at, ExpiresAt: at.Add(time.Minute),
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
	mustSession(t, s, newSession(alice.ID, "sid-code-1", base))
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
		!got.ExpiresAt.Equal(code.ExpiresAt) || got.SessionID != code.SessionID || got.Scope != code.Scope || got.ACR != "mfa" {
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
	mustSession(t, s, newSession(alice.ID, "sid-code-2", base))
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

// testClientRefresh: each use rotates; a superseded token presented again
// revokes its family and the access tokens issued in it; a replayed code
// does the same; another client's token is unknown.
func testClientRefresh(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	c := oidcClient("client-conf", "grafana", false)
	other := oidcClient("client-other", "other", false)
	for _, cl := range []store.Client{c, other} {
		if err := s.CreateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	mustSession(t, s, newSession(alice.ID, "sid-code-r", base))
	code := authCode("code-r", c, alice, base)
	if err := s.CreateCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(ctx, code.Hash, base); err != nil {
		t.Fatal(err)
	}
	first := store.ClientRefresh{Hash: hash("r0"), FamilyID: code.Hash, ClientID: c.ID, UserID: alice.ID, SessionID: "sid-r",
		Scope: "openid offline_access", AuthTime: base.Add(-time.Minute), AMR: []string{"pwd", "otp"}, ACR: "phr", CreatedAt: base}
	if err := s.CreateClientRefresh(ctx, first); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateClientRefresh twice", s.CreateClientRefresh(ctx, first), store.ErrConflict)
	got, err := s.RotateClientRefresh(ctx, c.ID, hash("r0"), hash("r1"), base.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got.FamilyID != code.Hash || got.UserID != alice.ID || got.SessionID != "sid-r" || got.Scope != first.Scope ||
		!got.AuthTime.Equal(first.AuthTime) || !slices.Equal(got.AMR, first.AMR) {
		t.Errorf("RotateClientRefresh = %+v, want %+v", got, first)
	}
	_, err = s.RotateClientRefresh(ctx, other.ID, hash("r1"), hash("x"), base.Add(2*time.Second))
	wantErr(t, "RotateClientRefresh by another client", err, store.ErrNotFound)
	_, err = s.RotateClientRefresh(ctx, c.ID, hash("nope"), hash("x"), base.Add(2*time.Second))
	wantErr(t, "RotateClientRefresh unknown", err, store.ErrNotFound)
	if got, err := s.RotateClientRefresh(ctx, c.ID, hash("r1"), hash("r2"), base.Add(3*time.Second)); err != nil || !got.AuthTime.Equal(first.AuthTime) || got.ACR != "phr" {
		t.Fatalf("second rotation: %+v, %v", got, err)
	}
	tok := clientToken("tok-r", "code-r", c, alice, base.Add(3*time.Second))
	if err := s.CreateClientToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// r0 again: reuse; the family (r2) and its access token end.
	_, err = s.RotateClientRefresh(ctx, c.ID, hash("r0"), hash("x"), base.Add(4*time.Second))
	wantErr(t, "RotateClientRefresh of a superseded token", err, store.ErrReuse)
	_, err = s.RotateClientRefresh(ctx, c.ID, hash("r2"), hash("r3"), base.Add(5*time.Second))
	wantErr(t, "RotateClientRefresh after reuse", err, store.ErrNotFound)
	_, err = s.ClientToken(ctx, tok.Hash, base.Add(5*time.Second))
	wantErr(t, "ClientToken after reuse", err, store.ErrNotFound)

	// A replayed code revokes its family too.
	code2 := authCode("code-s", c, alice, base)
	if err := s.CreateCode(ctx, code2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(ctx, code2.Hash, base); err != nil {
		t.Fatal(err)
	}
	second := first
	second.Hash, second.FamilyID = hash("s0"), code2.Hash
	if err := s.CreateClientRefresh(ctx, second); err != nil {
		t.Fatal(err)
	}
	_, err = s.RedeemCode(ctx, code2.Hash, base.Add(time.Second))
	wantErr(t, "RedeemCode replayed", err, store.ErrReuse)
	_, err = s.RotateClientRefresh(ctx, c.ID, hash("s0"), hash("s1"), base.Add(2*time.Second))
	wantErr(t, "RotateClientRefresh after the code's replay", err, store.ErrNotFound)

	// Concurrent rotations of one token: one wins; the first loser is reuse
	// and revokes the family, so later losers find the token revoked.
	third := first
	third.Hash, third.FamilyID = hash("t0"), hash("family-t")
	if err := s.CreateClientRefresh(ctx, third); err != nil {
		t.Fatal(err)
	}
	var won, reused, gone atomic.Int32
	Barrier(10, func(i int) {
		_, err := s.RotateClientRefresh(ctx, c.ID, hash("t0"), hash(fmt.Sprintf("t1-%d", i)), base.Add(time.Second))
		switch {
		case err == nil:
			won.Add(1)
		case errors.Is(err, store.ErrReuse):
			reused.Add(1)
		case errors.Is(err, store.ErrNotFound):
			gone.Add(1)
		default:
			t.Errorf("concurrent rotation: %v", err)
		}
	})
	if won.Load() != 1 || reused.Load() < 1 || reused.Load()+gone.Load() != 9 {
		t.Errorf("won %d, reused %d, revoked %d; want 1, at least 1, 9 in all", won.Load(), reused.Load(), gone.Load())
	}
	// The winner's successor went with the family.
	for i := range 10 {
		if _, err := s.RotateClientRefresh(ctx, c.ID, hash(fmt.Sprintf("t1-%d", i)), hash("t2"), base.Add(2*time.Second)); err == nil {
			t.Errorf("successor t1-%d works after the family was revoked", i)
		}
	}
}
