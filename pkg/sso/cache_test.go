package sso

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

// mutableRevoked is a RevocationChecker a test can change.
type mutableRevoked struct {
	mu  sync.Mutex
	set map[string]bool
}

func (m *mutableRevoked) Revoked(sid string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.set[sid]
}

func (m *mutableRevoked) revoke(sid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set == nil {
		m.set = map[string]bool{}
	}
	m.set[sid] = true
}

func TestCache(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	now := ssotest.Epoch.Unix()
	ctx := context.Background()

	t.Run("warm hit shares claims", func(t *testing.T) {
		v := newTestVerifier(t, ks, ssotest.NewClock())
		tok := ed.Mint(t, ssotest.ValidClaims())
		c1, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := v.Verify(ctx, tok)
		if err != nil || c1 != c2 || v.cache.len() != 1 {
			t.Fatalf("second Verify: %v, same claims %v, cache %d", err, c1 == c2, v.cache.len())
		}
	})
	t.Run("revoked while cached", func(t *testing.T) {
		rev := &mutableRevoked{}
		v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.Revoked = rev })
		tok := ed.Mint(t, ssotest.ValidClaims())
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		rev.revoke("s_1")
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrRevoked) {
			t.Fatalf("warm: %v, want ErrRevoked", err)
		}
		if v.cache.len() != 0 {
			t.Fatal("revoked token stays cached")
		}
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrRevoked) {
			t.Fatalf("cold: %v, want ErrRevoked", err)
		}
	})
	t.Run("expires at the cold path's bound", func(t *testing.T) {
		clk := ssotest.NewClock()
		v := newTestVerifier(t, ks, clk)
		tok := ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "exp", now+60))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		clk.Add(90 * time.Second) // exactly exp + leeway: still good
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("at exp+leeway: %v", err)
		}
		clk.Add(time.Nanosecond)
		_, err := v.Verify(ctx, tok)
		var ce *ClaimsError
		if !errors.Is(err, ErrExpired) || !errors.As(err, &ce) || ce.Claims.SessionID != "s_1" {
			t.Fatalf("past exp+leeway: %v, want ErrExpired with claims", err)
		}
	})
	t.Run("nbf rechecked", func(t *testing.T) {
		clk := ssotest.NewClock()
		v := newTestVerifier(t, ks, clk)
		tok := ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "nbf", now+20))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		clk.Add(-time.Minute) // the clock was stepped back
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrClaims) {
			t.Fatalf("%v, want ErrClaims", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.CacheSize = 32 })
		for i := range 300 {
			if _, err := v.Verify(ctx, ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "jti", fmt.Sprint(i)))); err != nil {
				t.Fatal(err)
			}
		}
		if n := v.cache.len(); n > 32 || n < 16 {
			t.Fatalf("cache holds %d entries, want at most 32", n)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.CacheSize = -1 })
		tok := ed.Mint(t, ssotest.ValidClaims())
		for range 2 {
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if v.cache != nil {
			t.Fatal("cache exists")
		}
	})
}

func TestCacheKeyRemovedFromSet(t *testing.T) {
	k1, k2 := ssotest.NewEdKey(t, "k1"), ssotest.NewESKey(t, "k2")
	srv := ssotest.NewJWKSServer(t, k1, k2)
	clk := ssotest.NewClock()
	ks := newTestRemote(t, srv.URL, clk)
	waitReady(t, ks)
	v := newTestVerifier(t, ks, clk)
	ctx := context.Background()
	tok1, tok2 := k1.Mint(t, ssotest.ValidClaims()), k2.Mint(t, ssotest.ValidClaims())
	for _, tok := range []string{tok1, tok2} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetKeys(k2) // k1 revoked at the issuer
	if err := ks.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok1); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a removed key: %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatalf("token of a kept key: %v", err)
	}
}

func TestCacheConcurrent(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	ks, _ := NewStaticKeySet(ed.JWK())
	rev := &mutableRevoked{}
	v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.CacheSize = 64; c.Revoked = rev })
	toks := make([]string, 40)
	for i := range toks {
		toks[i] = ed.Mint(t, ssotest.With(ssotest.ValidClaims(), "sid", fmt.Sprint("s", i%5), "jti", fmt.Sprint(i)))
	}
	var start, done sync.WaitGroup
	start.Add(1)
	for g := range 8 {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			for i := range 200 {
				tok := toks[(i*7+g)%len(toks)]
				c, err := v.Verify(context.Background(), tok)
				if err == nil && rev.Revoked(c.SessionID) {
					// Revocation may land between the check and here; only a
					// later call must see it.
					continue
				}
				if err != nil && !errors.Is(err, ErrRevoked) {
					t.Error(err)
					return
				}
				if g == 0 && i == 100 {
					rev.revoke("s3")
				}
			}
		}()
	}
	start.Done()
	done.Wait()
	if _, err := v.Verify(context.Background(), toks[3]); !errors.Is(err, ErrRevoked) {
		t.Fatalf("%v, want ErrRevoked", err)
	}
}

func TestVerifyUnknownKidRefetchesOnce(t *testing.T) {
	k1, k2 := ssotest.NewEdKey(t, "k1"), ssotest.NewEdKey(t, "k2")
	srv := ssotest.NewJWKSServer(t, k1)
	clk := ssotest.NewClock()
	ks := newTestRemote(t, srv.URL, clk)
	waitReady(t, ks)
	v := newTestVerifier(t, ks, clk)
	ctx := context.Background()
	clk.Add(11 * time.Second)
	tok := k2.Mint(t, ssotest.ValidClaims())
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnknownKey) || srv.FetchCount() != 2 {
		t.Fatalf("first: %v after %d fetches, want ErrUnknownKey after 2", err, srv.FetchCount())
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnknownKey) || srv.FetchCount() != 2 {
		t.Fatalf("again: %v after %d fetches, want no new fetch", err, srv.FetchCount())
	}
	// The issuer publishes k2 (a rotation): found at the next allowed refetch.
	srv.SetKeys(k1, k2)
	clk.Add(10 * time.Second)
	if _, err := v.Verify(ctx, tok); err != nil || srv.FetchCount() != 3 {
		t.Fatalf("after rotation: %v after %d fetches", err, srv.FetchCount())
	}
}
