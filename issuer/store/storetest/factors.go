package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

func mustEnableTOTP(t *testing.T, s store.Store, u store.User, codes ...string) store.TOTP {
	t.Helper()
	tp := store.TOTP{UserID: u.ID, Secret: "JBSWY3DPEHPK3PXP" + u.Username, CreatedAt: base, LastStep: 100}
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = hash(c)
	}
	if err := s.EnableTOTP(t.Context(), tp, hashes); err != nil {
		t.Fatalf("EnableTOTP(%s): %v", u.Username, err)
	}
	return tp
}

func testTOTP(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	_, err := s.TOTP(ctx, alice.ID)
	wantErr(t, "TOTP before EnableTOTP", err, store.ErrNotFound)
	want := mustEnableTOTP(t, s, alice)
	got, err := s.TOTP(ctx, alice.ID)
	if err != nil || got.UserID != want.UserID || got.Secret != want.Secret || !got.CreatedAt.Equal(want.CreatedAt) || got.LastStep != 100 {
		t.Fatalf("TOTP = %+v, %v; want %+v", got, err, want)
	}
	err = s.EnableTOTP(ctx, store.TOTP{UserID: alice.ID, Secret: "OTHER", CreatedAt: base}, nil)
	wantErr(t, "EnableTOTP(again)", err, store.ErrConflict)
	if got, _ := s.TOTP(ctx, alice.ID); got.Secret != want.Secret {
		t.Fatalf("a refused EnableTOTP replaced the secret with %q", got.Secret)
	}
	err = s.EnableTOTP(ctx, store.TOTP{UserID: "uid-nobody", Secret: "X", CreatedAt: base}, nil)
	wantErr(t, "EnableTOTP(unknown user)", err, store.ErrNotFound)

	for _, tc := range []struct {
		user store.User
		step int64
		want error
	}{
		{alice, 100, store.ErrConflict}, // the step enrolment used
		{alice, 99, store.ErrConflict},
		{alice, 101, nil},
		{alice, 101, store.ErrConflict}, // the same code again
		{alice, 103, nil},               // a later window
		{alice, 102, store.ErrConflict}, // an earlier one after it
		{bob, 200, store.ErrNotFound},
	} {
		err := s.UseTOTPStep(ctx, tc.user.ID, tc.step)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("UseTOTPStep(%s, %d) = %v, want %v", tc.user.Username, tc.step, err, tc.want)
		}
	}
	if got, _ := s.TOTP(ctx, alice.ID); got.LastStep != 103 {
		t.Fatalf("LastStep = %d, want 103", got.LastStep)
	}
	if err := s.DisableTOTP(ctx, alice.ID); err != nil {
		t.Fatalf("DisableTOTP: %v", err)
	}
	wantErr(t, "DisableTOTP(again)", s.DisableTOTP(ctx, alice.ID), store.ErrNotFound)
	_, err = s.TOTP(ctx, alice.ID)
	wantErr(t, "TOTP after DisableTOTP", err, store.ErrNotFound)
	// Enrolling again starts afresh.
	mustEnableTOTP(t, s, alice)
}

func testTOTPRace(t *testing.T, s store.Store) {
	alice := mustUser(t, s, "alice")
	mustEnableTOTP(t, s, alice)
	wins := race(t, 20, func() error { return s.UseTOTPStep(t.Context(), alice.ID, 101) }, store.ErrConflict)
	if wins != 1 {
		t.Fatalf("%d concurrent uses of one code succeeded, want exactly 1", wins)
	}
}

// race runs fn in n goroutines started together and returns how many
// succeeded; every failure must be loser.
func race(t *testing.T, n int, fn func() error, loser error) int {
	t.Helper()
	errs := make([]error, n)
	Barrier(n, func(i int) { errs[i] = fn() })
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			t.Errorf("goroutine %d: %v, want nil or %v", i, err, loser)
		}
	}
	return wins
}

func testRecoveryCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	left := func(u store.User) int {
		t.Helper()
		n, err := s.RecoveryCodesLeft(ctx, u.ID)
		if err != nil {
			t.Fatalf("RecoveryCodesLeft: %v", err)
		}
		return n
	}
	if n := left(alice); n != 0 {
		t.Fatalf("codes of a new user = %d", n)
	}
	mustEnableTOTP(t, s, alice, "a1", "a2", "a3")
	if err := s.ReplaceRecoveryCodes(ctx, bob.ID, []string{hash("b1")}); err != nil {
		t.Fatalf("ReplaceRecoveryCodes(bob): %v", err)
	}
	if n := left(alice); n != 3 {
		t.Fatalf("codes after EnableTOTP = %d, want 3", n)
	}
	use := func(u store.User, code string) error { return s.UseRecoveryCode(ctx, u.ID, hash(code), base) }
	if err := use(alice, "a2"); err != nil {
		t.Fatalf("UseRecoveryCode: %v", err)
	}
	wantErr(t, "UseRecoveryCode(used)", use(alice, "a2"), store.ErrNotFound)
	wantErr(t, "UseRecoveryCode(bob's code)", use(alice, "b1"), store.ErrNotFound)
	wantErr(t, "UseRecoveryCode(unknown)", use(alice, "zz"), store.ErrNotFound)
	if n := left(alice); n != 2 {
		t.Fatalf("codes after one use = %d, want 2", n)
	}
	if err := s.ReplaceRecoveryCodes(ctx, alice.ID, []string{hash("n1"), hash("n2"), hash("n3"), hash("n4")}); err != nil {
		t.Fatalf("ReplaceRecoveryCodes: %v", err)
	}
	wantErr(t, "UseRecoveryCode(replaced)", use(alice, "a1"), store.ErrNotFound)
	if err := use(alice, "n4"); err != nil || left(alice) != 3 {
		t.Fatalf("a new code: %v, %d left; want 3", err, left(alice))
	}
	if err := s.ReplaceRecoveryCodes(ctx, alice.ID, nil); err != nil || left(alice) != 0 {
		t.Fatalf("ReplaceRecoveryCodes(none): %v, %d left", err, left(alice))
	}
	if n := left(bob); n != 1 {
		t.Fatalf("bob's codes = %d, want 1: replacing alice's left them alone", n)
	}
	wantErr(t, "ReplaceRecoveryCodes(unknown user)", s.ReplaceRecoveryCodes(ctx, "uid-nobody", []string{hash("x")}), store.ErrNotFound)
}

func testRecoveryCodeRace(t *testing.T, s store.Store) {
	alice := mustUser(t, s, "alice")
	mustEnableTOTP(t, s, alice, "only")
	wins := race(t, 20, func() error { return s.UseRecoveryCode(t.Context(), alice.ID, hash("only"), base) }, store.ErrNotFound)
	if wins != 1 {
		t.Fatalf("%d concurrent uses of one recovery code succeeded, want exactly 1", wins)
	}
}

func challenge(id string, created time.Time, ttl time.Duration) store.Challenge {
	return store.Challenge{ID: hash(id), Kind: store.ChallengeSecondFactor, UserID: "uid-alice",
		Data: `{"return_to":"https://domain.com/ ✓"}`, CreatedAt: created, ExpiresAt: created.Add(ttl)}
}

func checkChallenge(t *testing.T, what string, got, want store.Challenge) {
	t.Helper()
	if got.ID != want.ID || got.Kind != want.Kind || got.UserID != want.UserID || got.Data != want.Data ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func testChallenges(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := challenge("c1", base, 5*time.Minute)
	if err := s.PutChallenge(ctx, c); err != nil {
		t.Fatalf("PutChallenge: %v", err)
	}
	wantErr(t, "PutChallenge(same id)", s.PutChallenge(ctx, c), store.ErrConflict)
	for range 2 { // reading changes nothing
		got, err := s.GetChallenge(ctx, c.ID, base.Add(time.Minute))
		if err != nil {
			t.Fatalf("GetChallenge: %v", err)
		}
		checkChallenge(t, "GetChallenge", got, c)
	}
	_, err := s.GetChallenge(ctx, c.ID, c.ExpiresAt)
	wantErr(t, "GetChallenge(at expiry)", err, store.ErrNotFound)
	_, err = s.TakeChallenge(ctx, c.ID, c.ExpiresAt)
	wantErr(t, "TakeChallenge(at expiry)", err, store.ErrNotFound)
	got, err := s.TakeChallenge(ctx, c.ID, c.ExpiresAt.Add(-time.Second))
	if err != nil {
		t.Fatalf("TakeChallenge: %v", err)
	}
	checkChallenge(t, "TakeChallenge", got, c)
	_, err = s.TakeChallenge(ctx, c.ID, base)
	wantErr(t, "TakeChallenge(again)", err, store.ErrNotFound)
	_, err = s.GetChallenge(ctx, c.ID, base)
	wantErr(t, "GetChallenge(taken)", err, store.ErrNotFound)
	_, err = s.TakeChallenge(ctx, hash("never"), base)
	wantErr(t, "TakeChallenge(unknown)", err, store.ErrNotFound)

	// A later put sweeps challenges that had expired by then: asked about
	// with an earlier clock, they are gone.
	old := challenge("old", base, time.Minute)
	live := challenge("live", base, time.Hour)
	for _, ch := range []store.Challenge{old, live, challenge("new", base.Add(10*time.Minute), time.Minute)} {
		if err := s.PutChallenge(ctx, ch); err != nil {
			t.Fatalf("PutChallenge: %v", err)
		}
	}
	_, err = s.GetChallenge(ctx, old.ID, base)
	wantErr(t, "GetChallenge(swept)", err, store.ErrNotFound)
	if _, err := s.GetChallenge(ctx, live.ID, base); err != nil {
		t.Fatalf("GetChallenge(unexpired, after a sweep): %v", err)
	}
}

func testChallengeRace(t *testing.T, s store.Store) {
	for i := range 3 {
		c := challenge(fmt.Sprint("race", i), base, time.Minute)
		if err := s.PutChallenge(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		wins := race(t, 20, func() error {
			_, err := s.TakeChallenge(t.Context(), c.ID, base)
			return err
		}, store.ErrNotFound)
		if wins != 1 {
			t.Fatalf("%d concurrent takes of one challenge succeeded, want exactly 1", wins)
		}
	}
}
