package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
)

// TestTokenClaims: a password sign-in's tokens carry auth_time (the sign-in,
// unchanged by refreshes), amr ["pwd"], and the user's groups, sorted, as
// they are at each refresh; no groups means no claim at all.
func TestTokenClaims(t *testing.T) {
	h := newHarness(t, options{})
	ctx := context.Background()
	alice := h.createUser("alice", "correct horse")
	b := h.browser()
	signedIn := h.clock.Now()
	b.login("alice", "correct horse")

	refresh := func() tokenClaims {
		t.Helper()
		h.clock.Advance(time.Minute)
		if r := b.get("/refresh?return_to=%2F"); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("refresh: status %d", r.StatusCode)
		}
		return b.claims()
	}
	tests := []struct {
		name   string
		change func(t *testing.T)
		token  func() tokenClaims
		groups []string
	}{
		{"login, no groups", nil, b.claims, nil},
		{"refresh after joining groups", func(t *testing.T) {
			for _, g := range []string{"ops", "admins"} {
				if err := h.store.AddGroup(ctx, alice.ID, g); err != nil {
					t.Fatal(err)
				}
			}
		}, refresh, []string{"admins", "ops"}},
		{"refresh after leaving one", func(t *testing.T) {
			if err := h.store.RemoveGroup(ctx, alice.ID, "admins"); err != nil {
				t.Fatal(err)
			}
		}, refresh, []string{"ops"}},
		{"refresh after leaving all", func(t *testing.T) {
			if err := h.store.RemoveGroup(ctx, alice.ID, "ops"); err != nil {
				t.Fatal(err)
			}
		}, refresh, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change(t)
			}
			c := tc.token()
			if c.AuthTime != signedIn.Unix() {
				t.Errorf("auth_time = %d, want the sign-in %d", c.AuthTime, signedIn.Unix())
			}
			if !slices.Equal(c.AMR, []string{"pwd"}) {
				t.Errorf("amr = %q, want [pwd]", c.AMR)
			}
			if !slices.Equal(c.Groups, tc.groups) {
				t.Errorf("groups = %q, want %q", c.Groups, tc.groups)
			}
			if _, present := c.Raw["groups"]; present != (len(tc.groups) > 0) {
				t.Errorf("groups claim present = %v with groups %q: it appears only when non-empty", present, tc.groups)
			}
		})
	}
}

// TestTokenClaimsRegister: a sign-up is a password sign-in too.
func TestTokenClaimsRegister(t *testing.T) {
	h := newHarness(t, options{})
	b := h.browser()
	r := b.post("/register", url.Values{"username": {"newbie"}, "password": {"correct horse"}, "csrf_token": {b.token()}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("register: status %d\n%s", r.StatusCode, r.body)
	}
	c := b.claims()
	if c.AuthTime != h.clock.Now().Unix() || !slices.Equal(c.AMR, []string{"pwd"}) || c.Raw["groups"] != nil {
		t.Fatalf("sign-up token: auth_time %d amr %q groups %s", c.AuthTime, c.AMR, c.Raw["groups"])
	}
}

// TestTokenNeverOutlivesSession (red-team 13): every token carries its
// session's absolute end as session_exp, and a token minted near that end
// expires with the session, not an access TTL later.
func TestTokenNeverOutlivesSession(t *testing.T) {
	h := newHarness(t, options{mutate: func(c *config.Config) {
		c.SessionTTL, c.AccessTTL, c.IdleTTL = time.Hour, 10*time.Minute, time.Hour
	}})
	h.createUser("alice", "correct horse")
	b := h.browser()
	end := h.clock.Now().Add(time.Hour).Unix()
	b.login("alice", "correct horse")
	for _, step := range []struct {
		after time.Duration
		exp   int64
	}{
		{0, h.clock.Now().Add(10 * time.Minute).Unix()},
		{50 * time.Minute, end}, // 10 minutes left at the mint: exactly the session's end
		{5 * time.Minute, end},  // 5 left: the session's end, not 10 minutes on
	} {
		if step.after > 0 {
			h.clock.Advance(step.after)
			if r := b.get("/refresh?return_to=%2F"); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("refresh at +%s: status %d", step.after, r.StatusCode)
			}
		}
		c := b.claims()
		var sessionExp int64
		if err := json.Unmarshal(c.Raw["session_exp"], &sessionExp); err != nil || sessionExp != end {
			t.Errorf("session_exp = %s (%v), want %d", c.Raw["session_exp"], err, end)
		}
		if c.Expiry != step.exp {
			t.Errorf("exp = %d, want %d (session ends %d)", c.Expiry, step.exp, end)
		}
	}
}
