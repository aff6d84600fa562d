package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// TestUpstreamTokenBudget: a person in hundreds of provider groups, with
// the longest username, provider name and local groups, still gets an
// access token under 1 KiB that the strict verifier of pkg/sso accepts
// with its idp claim.
func TestUpstreamTokenBudget(t *testing.T) {
	long := strings.Repeat("p", config.MaxIDPName)
	h := newHarness(t, options{mutate: func(c *config.Config) {
		c.URL, c.CookieDomain = "https://sign-in.a-rather-long-company-name.example.com", "a-rather-long-company-name.example.com"
		if err := c.IDPs.Set("name=" + long + ",issuer=https://idp.localhost,client-id=x,client-secret-file=/dev/null,groups-claim=groups"); err != nil {
			t.Fatal(err)
		}
	}})
	var many []string
	for i := range 500 {
		many = append(many, fmt.Sprintf("%s%03d", strings.Repeat("g", 29), i))
	}
	carried, dropped := carriedGroups(h.cfg.IDPs[0], many)
	if dropped == 0 || len(carried) == 0 {
		t.Fatalf("carried %d, dropped %d: the budget did not apply", len(carried), dropped)
	}
	var local []string
	for i := range 3 { // half of the 180-byte budget for local groups
		local = append(local, fmt.Sprintf("%s%d", strings.Repeat("l", 30), i))
	}
	u := store.User{ID: randomID(16), Username: strings.Repeat("u", 63)}
	now := h.clock.Now()
	sess := store.Session{ID: randomID(16), AuthTime: now, ExpiresAt: now.Add(h.cfg.SessionTTL)}
	amr := sessionAMR(config.IDP{TrustAMR: true}, &upstreamID{AMR: []string{"pwd", "otp", "hwk", "mfa", "face", "fed"}})
	if strings.Join(amr, " ") != "fed mfa hwk" {
		t.Fatalf("trusted amr %q, want fed mfa hwk", amr)
	}
	tok, err := h.srv.mint(h.srv.primary(), u, sess, facts{amr: amr, groups: mergeGroups(local, carried), idp: long}, now, now.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("token: %d bytes with %d provider groups carried, %d left out", len(tok), len(carried), dropped)
	if len(tok) >= 1024 {
		t.Fatalf("token is %d bytes, want under 1 KiB", len(tok))
	}
	claims, err := h.srv.verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("strict verification: %v", err)
	}
	if claims.IDP != long || len(claims.AMR) != 3 {
		t.Fatalf("decoded idp %q amr %q", claims.IDP, claims.AMR)
	}
	if len(claims.Groups) <= len(local) || len(claims.Groups) > len(local)+len(carried) {
		t.Fatalf("groups %q: want the local ones and some of the provider's", claims.Groups)
	}
	// Local groups filling the whole budget leave no room for provider ones.
	var full []string
	for i := range 5 {
		full = append(full, fmt.Sprintf("%s%d", strings.Repeat("l", 30), i))
	}
	if got := mergeGroups(full, carried); len(got) != len(full) {
		t.Fatalf("full local budget: %d groups, want only the %d local ones", len(got), len(full))
	}
	tok, err = h.srv.mint(h.srv.primary(), u, sess, facts{amr: amr, groups: mergeGroups(full, carried), idp: long}, now, now.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) >= 1024 {
		t.Fatalf("token with a full local budget is %d bytes", len(tok))
	}
	for _, g := range claims.Groups {
		if err := wire.CheckGroupName(g); err != nil {
			t.Errorf("carried group %q: %v", g, err)
		}
	}
}

// TestCarriedGroups: mapping, namespacing, allowed-groups filtering; a
// provider can never name a local group.
func TestCarriedGroups(t *testing.T) {
	p := config.IDP{Name: "corp", MapGroups: map[string]string{"eng": "staff"}, AllowedGroups: []string{"ops", "eng"}}
	got, _ := carriedGroups(p, []string{"admins", "ops", "eng", "eng", "Ops!"})
	if strings.Join(got, " ") != "corp:ops staff" {
		t.Fatalf("allowed: %q", got)
	}
	p.AllowedGroups = nil
	got, dropped := carriedGroups(p, []string{"admins", "staff", "UPPER", "corp:x"})
	if strings.Join(got, " ") != "corp:admins corp:staff" || dropped != 2 {
		t.Fatalf("namespaced: %q (dropped %d)", got, dropped)
	}
}
