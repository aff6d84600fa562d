// Package storetest is the conformance suite that every store.Store backend
// runs, so that all backends behave alike down to error values and edge cases.
package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// The suite never reads a clock: every time is base plus whole seconds, which
// every backend stores exactly (SQLite keeps microseconds, PostgreSQL too).
var base = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// Lifetimes as the issuer's defaults set them.
const (
	sessionTTL = 720 * time.Hour
	idleTTL    = 168 * time.Hour
	accessTTL  = 5 * time.Minute
	grace      = 30 * time.Second
)

// Run runs the suite. newStore must return an empty, ready store; every
// subtest gets its own, and Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"UserCreateLookup", testUserCreateLookup},
		{"UserConflict", testUserConflict},
		{"UserList", testUserList},
		{"UserDisable", testUserDisable},
		{"UserSetPassword", testUserSetPassword},
		{"UserDelete", testUserDelete},
		{"SessionCreateGet", testSessionCreateGet},
		{"SessionList", testSessionList},
		{"SessionRevoke", testSessionRevoke},
		{"LinkedSessions", testLinkedSessions},
		{"RotateRotates", testRotateRotates},
		{"RotateConverges", testRotateConverges},
		{"RotateConvergeMismatch", testRotateConvergeMismatch},
		{"RotateReuseAfterGrace", testRotateReuseAfterGrace},
		{"RotateReuseAncestor", testRotateReuseAncestor},
		{"RotateKeepsRecentAncestors", testRotateKeepsRecentAncestors},
		{"RotateUnknown", testRotateUnknown},
		{"RotateEnded", testRotateEnded},
		{"RotateRace", testRotateRace},
		{"RotateSuccessorCollision", testRotateSuccessorCollision},
		{"RotateFacts", testRotateFacts},
		{"RevokedSince", testRevokedSince},
		{"Revocations", testRevocations},
		{"RevocationLog", testRevocationLog},
		{"Sweep", testSweep},
		{"Secret", testSecret},
		{"Events", testEvents},
		{"HostileText", testHostileText},
		{"SweepEvents", testSweepEvents},
		{"Ping", testPing},
		{"Groups", testGroups},
		{"GroupNames", testGroupNames},
		{"Memberships", testMemberships},
		{"SessionAMR", testSessionAMR},
		{"TOTP", testTOTP},
		{"TOTPRace", testTOTPRace},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeRace", testRecoveryCodeRace},
		{"Challenges", testChallenges},
		{"ChallengeRace", testChallengeRace},
		{"Passkeys", testPasskeys},
		{"PasskeyRace", testPasskeyRace},
		{"Identities", testIdentities},
		{"IdentityUnlinkLast", testIdentityUnlinkLast},
		{"IdentityUnlinkRace", testIdentityUnlinkRace},
		{"CreateLinkedUser", testCreateLinkedUser},
		{"SessionUpstream", testSessionUpstream},
		{"Clients", testClients},
		{"Codes", testCodes},
		{"CodeRace", testCodeRace},
		{"ClientRefresh", testClientRefresh},
		{"LogoutOutbox", testLogoutOutbox},
		{"LogoutOutboxUserChanges", testLogoutOutboxUserChanges},
		{"LogoutOutboxExpiry", testLogoutOutboxExpiry},
		{"LogoutOutboxPrune", testLogoutOutboxPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.run(t, s)
		})
	}
}

// hash is what the issuer stores for a refresh token: its SHA-256 in hex.
func hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tok names the n-th refresh token of a session, unique across the store.
func tok(sid string, n int) string { return fmt.Sprintf("%s/token-%d", sid, n) }

func mustUser(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	u := store.User{ID: "uid-" + name, Username: name, PasswordHash: "hash-" + name, CreatedAt: base}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", name, err)
	}
	return u
}

// newSession is a session signed in at `at` with the default lifetimes.
func newSession(userID, sid string, at time.Time) store.Session {
	return store.Session{
		ID:          sid,
		UserID:      userID,
		CreatedAt:   at,
		AuthTime:    at,
		ExpiresAt:   at.Add(sessionTTL),
		LastUsedAt:  at,
		AccessUntil: at.Add(accessTTL),
		UserAgent:   "Mozilla/5.0 (storetest)",
		IP:          "192.0.2.1",
	}
}

// mustSession creates sess with tok(sess.ID, 0) as its first refresh token.
func mustSession(t *testing.T, s store.Store, sess store.Session) store.Session {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess, hash(tok(sess.ID, 0))); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
	return sess
}

func mustGetSession(t *testing.T, s store.Store, sid string) store.Session {
	t.Helper()
	got, err := s.Session(t.Context(), sid)
	if err != nil {
		t.Fatalf("Session(%s): %v", sid, err)
	}
	return got
}

// rotateReq presents token `presented` of sid and derives successor `next`,
// at now, with the default grace and idle TTL.
func rotateReq(sid string, presented, next int, now time.Time) store.RotateRequest {
	return store.RotateRequest{
		PresentedHash: hash(tok(sid, presented)),
		SuccessorHash: hash(tok(sid, next)),
		Now:           now,
		Grace:         grace,
		IdleTTL:       idleTTL,
		AccessExpiry:  now.Add(accessTTL),
	}
}

func mustRotate(t *testing.T, s store.Store, r store.RotateRequest, want store.RotateOutcome) store.RotateResult {
	t.Helper()
	res, err := s.RotateRefresh(t.Context(), r)
	if err != nil {
		t.Fatalf("RotateRefresh at %v: %v", r.Now, err)
	}
	if res.Outcome != want {
		t.Fatalf("RotateRefresh at %v: outcome %v, want %v", r.Now, res.Outcome, want)
	}
	return res
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// sessionView makes a session comparable with == and readable when printed,
// whatever time zone or pointer a backend hands back.
type sessionView struct {
	ID, UserID                                              string
	CreatedAt, AuthTime, ExpiresAt, LastUsedAt, AccessUntil string
	RevokedAt, RevokeReason, UserAgent, IP                  string
}

func viewSession(s store.Session) sessionView {
	revoked := "<nil>"
	if s.RevokedAt != nil {
		revoked = ts(*s.RevokedAt)
	}
	return sessionView{
		ID: s.ID, UserID: s.UserID,
		CreatedAt: ts(s.CreatedAt), AuthTime: ts(s.AuthTime), ExpiresAt: ts(s.ExpiresAt),
		LastUsedAt: ts(s.LastUsedAt), AccessUntil: ts(s.AccessUntil),
		RevokedAt: revoked, RevokeReason: s.RevokeReason, UserAgent: s.UserAgent, IP: s.IP,
	}
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func checkSession(t *testing.T, what string, got, want store.Session) {
	t.Helper()
	if g, w := viewSession(got), viewSession(want); g != w {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// revoked returns sess as it reads after a revocation at `at` for reason.
func revoked(sess store.Session, at time.Time, reason string) store.Session {
	sess.RevokedAt = &at
	sess.RevokeReason = reason
	return sess
}

type userView struct {
	ID, Username, PasswordHash string
	Disabled                   bool
	CreatedAt, DeletedAt       string
}

func viewUser(u store.User) userView {
	deleted := "<nil>"
	if u.DeletedAt != nil {
		deleted = ts(*u.DeletedAt)
	}
	return userView{u.ID, u.Username, u.PasswordHash, u.Disabled, ts(u.CreatedAt), deleted}
}

func checkUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	if g, w := viewUser(got), viewUser(want); g != w {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func sessionIDs(ss []store.Session) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

// Barrier runs fn(0), …, fn(n-1) in n goroutines released together once all
// have started, and returns when every one has: the start of a race test
// that asserts exactly one winner.
func Barrier(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}
