package sso

import (
	"context"
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
