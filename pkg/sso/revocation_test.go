package sso

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

func TestRevocationList(t *testing.T) {
	now := ssotest.Epoch.Unix()
	feed := ssotest.NewFeedServer(t, `{"revoked":[{"sid":"a","until":`+ssotest.Itoa(now+300)+`},{"sid":"b","until":`+ssotest.Itoa(now+60)+`}]}`)
	clk := ssotest.NewClock()
	ctx, cancel := context.WithCancel(context.Background())
	l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: time.Hour, Now: clk.Now, Logger: ssotest.DiscardLogger()})
	defer func() { cancel(); l.wait() }()
	ssotest.WaitFor(t, func() bool { return !l.LastSuccess().IsZero() })
	check := func(step string, want map[string]bool) {
		t.Helper()
		for sid, w := range want {
			if got := l.Revoked(sid); got != w {
				t.Errorf("%s: Revoked(%q) = %v, want %v", step, sid, got, w)
			}
		}
	}
	check("first poll", map[string]bool{"a": true, "b": true, "c": false})

	// Unchanged feed: a 304, nothing lost.
	if err := l.Poll(ctx); err != nil || feed.NotModified.Load() != 1 {
		t.Fatalf("poll: %v, 304s %d", err, feed.NotModified.Load())
	}
	check("304", map[string]bool{"a": true, "b": true})

	// The feed's window moves on: entries that left it are kept until
	// until + leeway.
	feed.Set(`{"revoked":[{"sid":"c","until":`+ssotest.Itoa(now+600)+`}]}`, false)
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	check("merged", map[string]bool{"a": true, "b": true, "c": true})

	// The feed goes down: the set stays in force.
	feed.Set("", true)
	if err := l.Poll(ctx); err == nil || l.LastPollError() == nil {
		t.Fatal("poll of a down feed succeeded")
	}
	check("feed down", map[string]bool{"a": true, "b": true, "c": true})

	// b's tokens have all expired (until 60 s + 30 s leeway): it is dropped.
	clk.Add(91 * time.Second)
	if err := l.Poll(ctx); err == nil {
		t.Fatal("poll of a down feed succeeded")
	}
	check("aged", map[string]bool{"a": true, "b": false, "c": true})
	if l.Len() != 2 {
		t.Fatalf("Len %d, want 2", l.Len())
	}

	// Garbage keeps the set too.
	feed.Set(`<html>`, false)
	if err := l.Poll(ctx); err == nil {
		t.Fatal("garbage accepted")
	}
	check("garbage", map[string]bool{"a": true, "c": true})
}

func TestRevocationListPolls(t *testing.T) {
	feed := ssotest.NewFeedServer(t, `{"revoked":[]}`)
	ctx, cancel := context.WithCancel(context.Background())
	l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: 10 * time.Millisecond, Logger: ssotest.DiscardLogger()})
	ssotest.WaitFor(t, func() bool { return feed.Polls.Load() >= 3 })
	cancel()
	l.wait()
}

func TestVerifierWithRevocationList(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	feed := ssotest.NewFeedServer(t, `{"revoked":[]}`)
	clk := ssotest.NewClock()
	ctx, cancel := context.WithCancel(context.Background())
	l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: time.Hour, Now: clk.Now, Logger: ssotest.DiscardLogger()})
	defer func() { cancel(); l.wait() }()
	v := newTestVerifier(t, ks, clk, func(c *Config) { c.Revoked = l })
	tok := ed.Mint(t, ssotest.ValidClaims())
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	feed.Set(`{"revoked":[{"sid":"s_1","until":`+ssotest.Itoa(ssotest.Epoch.Unix()+300)+`}]}`, false)
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); Reason(err) != "revoked" {
		t.Fatalf("cached token of a revoked session: %v", err)
	}
}

// TestRevocationListUserLevel (red-team 6): one user-level entry of the
// second feed revokes every token of the user issued before it, cached or
// not, except the session it spares and sessions started later; 200,000
// sessions are one entry.
func TestRevocationListUserLevel(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	now := ssotest.Epoch.Unix()
	feed := ssotest.NewFeedServer(t, `{"revocations":[]}`)
	clk := ssotest.NewClock()
	ctx, cancel := context.WithCancel(context.Background())
	var notified []Revocations
	l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: time.Hour, Now: clk.Now, Logger: ssotest.DiscardLogger(),
		UserLevel: true, OnRevoke: func(r Revocations) { notified = append(notified, r) }})
	defer func() { cancel(); l.wait() }()
	v := newTestVerifier(t, ks, clk, func(c *Config) { c.Revoked = l })
	// Every one of 200,000 sessions by the rule; 1,000 of them as signed
	// tokens through the verifier, cached and cold (signing all is slow).
	const n, signed = 200_000, 1_000
	toks := make([]string, 0, signed)
	for i := range signed {
		toks = append(toks, ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "sid", "s_"+strconv.Itoa(i), "iat", now-60)))
	}
	kept := ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "sid", "s_keep", "iat", now-60))
	later := ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "sid", "s_later", "iat", now))
	bob := ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "sub", "u_bob", "iat", now-60))
	for _, tok := range append(toks[:10:10], kept, later, bob) {
		if _, err := v.Verify(ctx, tok); err != nil { // now in the cache
			t.Fatal(err)
		}
	}
	feed.Set(`{"revocations":[{"sub":"u_alice","claim":"iat","before":`+ssotest.Itoa(now)+`,"until":`+ssotest.Itoa(now+300)+`,"except_sid":"s_keep"}]}`, false)
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 1 {
		t.Errorf("the set holds %d entries, want 1", l.Len())
	}
	for i, tok := range toks {
		if _, err := v.Verify(ctx, tok); Reason(err) != "revoked" {
			t.Fatalf("token %d of the user, issued before: %v, want revoked", i, err)
		}
	}
	for i := range n {
		if c := (&Claims{Subject: "u_alice", SessionID: "s_" + strconv.Itoa(i), IssuedAt: now - 60}); !l.RevokedClaims(c) {
			t.Fatalf("session %d is not revoked", i)
		}
	}
	for name, tok := range map[string]string{"the spared session": kept, "a later session": later, "another user": bob} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("%s: %v, want accepted", name, err)
		}
	}
	if len(notified) != 1 || len(notified[0].Users) != 1 || notified[0].Users[0].Subject != "u_alice" {
		t.Errorf("OnRevoke got %+v, want the one user entry", notified)
	}
	// Past until + leeway the entry is forgotten.
	clk.Add(300*time.Second + DefaultLeeway + time.Second)
	_ = l.Poll(ctx)
	if l.Len() != 0 {
		t.Errorf("after until + leeway the set holds %d entries", l.Len())
	}
}

// TestRevocationFeedUnreadable (red-team 6): a feed the issuer serves but
// that cannot be read whole (testdata/feeds) sets FeedError and applies what
// it could; an unreachable issuer does not; a good feed clears it.
func TestRevocationFeedUnreadable(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/feeds/revocation_feeds.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Unreadable []struct{ Name, Body string } `json:"unreadable"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	until := ssotest.Itoa(ssotest.Epoch.Unix() + 300)
	for _, tc := range table.Unreadable {
		t.Run(tc.Name, func(t *testing.T) {
			body := strings.ReplaceAll(tc.Body, "UNTIL", until)
			if body == "BIG" {
				body = `{"revocations":[` + strings.Repeat(`{"sid":"s_padding_padding","until":`+until+`},`, 200_000) + `{"sid":"s_1","until":` + until + `}]}`
			}
			feed := ssotest.NewFeedServer(t, `{"revocations":[]}`)
			clk := ssotest.NewClock()
			ctx, cancel := context.WithCancel(context.Background())
			var outcomes []string
			l := NewRevocationList(ctx, feed.URL, RevocationOptions{Interval: time.Hour, Now: clk.Now, Logger: ssotest.DiscardLogger(),
				UserLevel: true, Observer: observerFunc(func(o string) { outcomes = append(outcomes, o) })})
			defer func() { cancel(); l.wait() }()
			ssotest.WaitFor(t, func() bool { return l.LastPollError() == nil && !l.LastSuccess().IsZero() })
			feed.Set("", true) // unreachable: an outage, not a feed error
			if err := l.Poll(ctx); err == nil || l.FeedError() != nil {
				t.Fatalf("unreachable issuer: poll %v, FeedError %v; want an error and no FeedError", err, l.FeedError())
			}
			feed.Set(body, false)
			if err := l.Poll(ctx); err == nil || l.FeedError() == nil {
				t.Fatalf("poll %v, FeedError %v; want both set", err, l.FeedError())
			}
			if tc.Name == "overflow" && !l.Revoked("s_1") {
				t.Error("an overflowing feed's entries were not applied")
			}
			feed.Set("", true)
			if _ = l.Poll(ctx); l.FeedError() == nil {
				t.Error("an outage cleared FeedError")
			}
			feed.Set(`{"revocations":[]}`, false)
			if err := l.Poll(ctx); err != nil || l.FeedError() != nil {
				t.Errorf("good feed again: %v, FeedError %v", err, l.FeedError())
			}
			// The good feed is the first one again: its ETag answers 304.
			want := []string{PollUpdated, PollUnreachable, PollUnreadable, PollUnreachable, PollNotModified}
			if !slices.Equal(outcomes, want) {
				t.Errorf("outcomes %v, want %v", outcomes, want)
			}
		})
	}
}

type observerFunc func(string)

func (f observerFunc) RevocationPolled(o string) { f(o) }
