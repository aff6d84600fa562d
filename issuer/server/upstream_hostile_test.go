package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/oidctest"
	"github.com/canopy-sso/canopy/issuer/store"
)

// upstreamRow is one row of testdata/upstream/hostile.json.
type upstreamRow struct {
	Name         string `json:"name"`
	Attack       string `json:"attack"`
	Mode         string `json:"mode"`
	WantStatus   int    `json:"want_status"`
	WantOutcome  string `json:"want_outcome"`
	WantText     string `json:"want_text"`
	WantLocation string `json:"want_location"`
}

// TestUpstreamHostile mounts every attack of the table against the issuer
// in front of a real provider: each gets its page, its counted outcome,
// and leaves no session behind (only the foreign return_to row signs in,
// and lands on the issuer, not on the foreign host).
func TestUpstreamHostile(t *testing.T) {
	data, err := os.ReadFile("../../testdata/upstream/hostile.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Rows []upstreamRow `json:"rows"`
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) < 13 {
		t.Fatalf("the table has %d rows; the issue lists 13", len(table.Rows))
	}
	// Mallory's unverified email is the address another provider verified
	// for Alice, and corp may link verified emails.
	f := newFedHarness(t, ",link-verified-email=true", options{})
	alice := f.createUser("alice", "pw-pw-pw-pw-pw")
	ctx := context.Background()
	other := storeIdentity("https://other-idp.example", "alice-there", alice.ID, f.clock.Now())
	other.Email = "alice@corp.example"
	if err := f.store.LinkIdentity(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, row := range table.Rows {
		t.Run(row.Name, func(t *testing.T) {
			f.op.SetMode(oidctest.Mode(row.Mode))
			defer f.op.SetMode(oidctest.Real)
			before := f.outcome(outcomeIDP(row), row.WantOutcome)
			b := f.browser()
			r := f.attack(t, b, row)
			if r.StatusCode != row.WantStatus {
				t.Fatalf("status %d, want %d:\n%s", r.StatusCode, row.WantStatus, r.body)
			}
			if row.WantText != "" && !strings.Contains(r.body, row.WantText) {
				t.Fatalf("page lacks %q:\n%s", row.WantText, r.body)
			}
			if row.WantLocation != "" && r.Header.Get("Location") != row.WantLocation {
				t.Fatalf("Location %q, want %q", r.Header.Get("Location"), row.WantLocation)
			}
			if row.WantStatus >= 400 {
				if _, ok := b.cookies[f.cfg.Cookies().Access]; ok {
					t.Fatal("a refused sign-in left an access cookie")
				}
				if !strings.Contains(r.body, "Back to sign-in") {
					t.Fatal("the page has no way back")
				}
			}
			if got := f.outcome(outcomeIDP(row), row.WantOutcome); got != before+1 {
				t.Fatalf("outcome %q counted %v times, want %v", row.WantOutcome, got, before+1)
			}
		})
	}
	// Mallory (unverified alice@corp.example) linked nothing.
	if _, err := f.store.Identity(ctx, f.op.URL, "sub-mallory"); err == nil {
		t.Fatal("an unverified email linked an account")
	}
	// The control: Alice's own verified address does link, to Alice.
	b := f.browser()
	if r := b.get(f.atProvider(f.authorize(b, ""), "alice")); r.StatusCode != http.StatusSeeOther || b.claims().Subject != alice.ID {
		t.Fatalf("verified email: %d, want a sign-in as alice:\n%s", r.StatusCode, r.body)
	}
}

func storeIdentity(issuer, subject, userID string, at time.Time) store.Identity {
	return store.Identity{Issuer: issuer, Subject: subject, UserID: userID, Provider: "corp", CreatedAt: at}
}

func outcomeIDP(row upstreamRow) string {
	switch row.Attack {
	case "unknown_provider":
		return ""
	case "down":
		return "dead"
	}
	return "corp"
}

// attack mounts one row's attack and returns the browser's last answer.
func (f *fedHarness) attack(t *testing.T, b *browser, row upstreamRow) *response {
	switch row.Attack {
	case "sign_in":
		return b.get(f.atProvider(f.authorize(b, ""), "carol"))
	case "wrong_state":
		cb := f.atProvider(f.authorize(b, ""), "carol")
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", q.Get("state")+"x")
		u.RawQuery = q.Encode()
		return b.get(u.RequestURI())
	case "replay_state":
		f.linkCarol(t)
		cb := f.atProvider(f.authorize(b, ""), "carol")
		if r := b.get(cb); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("first use: %d:\n%s", r.StatusCode, r.body)
		}
		delete(b.cookies, f.cfg.Cookies().Access)
		return b.get(cb)
	case "other_browser":
		cb := f.atProvider(f.authorize(b, ""), "carol")
		return f.browser().get(cb)
	case "replay_code":
		f.linkCarol(t)
		cb := f.atProvider(f.authorize(b, ""), "carol")
		if r := b.get(cb); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("first use: %d:\n%s", r.StatusCode, r.body)
		}
		delete(b.cookies, f.cfg.Cookies().Access)
		// A fresh state of this browser, with the used code.
		first, _ := url.Parse(cb)
		fresh, _ := url.Parse(f.authorize(b, ""))
		q := url.Values{"code": {first.Query().Get("code")}, "state": {fresh.Query().Get("state")}}
		return b.get("/login/upstream/corp/callback?" + q.Encode())
	case "unverified_email":
		return b.get(f.atProvider(f.authorize(b, ""), "mallory.M"))
	case "access_denied":
		auth, _ := url.Parse(f.authorize(b, ""))
		q := url.Values{"error": {"access_denied"}, "error_description": {"<script>alert(1)</script>"}, "state": {auth.Query().Get("state")}}
		return b.get("/login/upstream/corp/callback?" + q.Encode())
	case "unknown_provider":
		return b.get("/login/upstream/nope/callback?code=x&state=y")
	case "foreign_return_to":
		f.linkCarol(t)
		auth := f.authorize(b, "?return_to="+url.QueryEscape("https://evil.example/steal"))
		return b.get(f.atProvider(auth, "carol"))
	case "down":
		return b.get("/login/upstream/dead")
	}
	t.Fatalf("unknown attack %q", row.Attack)
	return nil
}

// linkCarol links the provider's carol to a local user, once.
func (f *fedHarness) linkCarol(t *testing.T) {
	ctx := context.Background()
	if _, err := f.store.Identity(ctx, f.op.URL, "sub-carol"); err == nil {
		return
	}
	u := f.createUser("carol", "pw-pw-pw-pw-pw")
	if err := f.store.LinkIdentity(ctx, storeIdentity(f.op.URL, "sub-carol", u.ID, f.clock.Now())); err != nil {
		t.Fatal(err)
	}
}
