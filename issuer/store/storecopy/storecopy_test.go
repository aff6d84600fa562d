package storecopy

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/pgtest"
	"github.com/canopy-sso/canopy/issuer/store/postgres"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var base = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

const grace = 30 * time.Second

func tok(sid string, n int) string { return fmt.Sprintf("%s-token-%d", sid, n) }

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// bumpVersion records a schema version this program does not know, as a
// newer issuer would.
func bumpVersion(path string) error {
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	_, err = db.Exec(`INSERT INTO migrations (version, applied_at) VALUES (?, 0)`, schemaVersion+1)
	return err
}

// seeded is what seed wrote, for comparison after the copy.
type seeded struct {
	path      string
	sids      []string
	rotatedAt time.Time // when "live" rotated to its token 2
	secret    []byte
}

// seed writes a SQLite issuer database through the store interface: users
// in every state, sessions in every state (one rotated twice, inside the
// grace of its last rotation), a secret and events. The store is closed
// afterwards unless keepOpen, as a stopped issuer leaves it.
func seed(t *testing.T, keepOpen bool) seeded {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "issuer.db")
	s, err := sqlite.Open(path, sqlite.Options{Now: func() time.Time { return base }})
	if err != nil {
		t.Fatal(err)
	}
	if keepOpen {
		t.Cleanup(func() { _ = s.Close() })
	} else {
		defer func() { _ = s.Close() }()
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []store.User{
		{ID: "uid-alice", Username: "alice", PasswordHash: "$argon2id$alice", CreatedAt: base},
		{ID: "uid-bob", Username: "bob", PasswordHash: "$argon2id$bob", CreatedAt: base.Add(time.Second)},
		{ID: "uid-carol", Username: "carol", PasswordHash: "$argon2id$carol", CreatedAt: base.Add(2 * time.Second)},
	} {
		must(s.CreateUser(ctx, u))
	}
	sess := func(uid, sid string) store.Session {
		return store.Session{ID: sid, UserID: uid, CreatedAt: base, AuthTime: base, ExpiresAt: base.Add(720 * time.Hour),
			LastUsedAt: base, AccessUntil: base.Add(5 * time.Minute), UserAgent: "Firefox ✓", IP: "2001:db8::1"}
	}
	sids := []string{"live", "logged-out", "reused", "bobs", "carols"}
	for _, sid := range sids {
		uid := map[string]string{"bobs": "uid-bob", "carols": "uid-carol"}[sid]
		if uid == "" {
			uid = "uid-alice"
		}
		must(s.CreateSession(ctx, sess(uid, sid), hashOf(tok(sid, 0))))
	}
	rotate := func(sid string, from, to int, at time.Time) error {
		_, err := s.RotateRefresh(ctx, store.RotateRequest{PresentedHash: hashOf(tok(sid, from)), SuccessorHash: hashOf(tok(sid, to)),
			Now: at, Grace: grace, IdleTTL: 168 * time.Hour, AccessExpiry: at.Add(5 * time.Minute)})
		return err
	}
	must(s.AddGroup(ctx, "uid-alice", "admins"))
	must(s.AddGroup(ctx, "uid-alice", "ops"))
	must(s.SetSessionAMR(ctx, "live", []string{"pwd", "otp"}))
	must(s.EnableTOTP(ctx, store.TOTP{UserID: "uid-alice", Secret: "JBSWY3DPEHPK3PXP", CreatedAt: base, LastStep: 42},
		[]string{hashOf("r1"), hashOf("r2")}))
	must(s.UseRecoveryCode(ctx, "uid-alice", hashOf("r1"), base))
	must(s.AddPasskey(ctx, store.Passkey{ID: "cred-1", UserID: "uid-alice", Name: "Laptop ✓", Credential: `{"id":"cred-1"}`,
		SignCount: 3, CreatedAt: base}))
	must(s.LinkIdentity(ctx, store.Identity{Issuer: "https://idp.example", Subject: "sub-alice ✓", UserID: "uid-alice",
		Provider: "corp", Email: "alice@corp.example", CreatedAt: base}))
	must(s.SetSessionUpstream(ctx, "live", "corp", []string{"corp:eng", "staff"}))
	must(s.CreateClient(ctx, store.Client{ID: "client-1", Name: "grafana", SecretHash: hashOf("secret"), RedirectURIs: []string{"https://g.example.com/cb"},
		IDTokenAlg: "RS256", RequireGroups: []string{"admins"}, CreatedAt: base}))
	must(s.CreateCode(ctx, store.AuthCode{Hash: hashOf("code"), ClientID: "client-1", UserID: "uid-alice", SessionID: "live",
		RedirectURI: "https://g.example.com/cb", Scope: "openid", AuthTime: base, AMR: []string{"pwd"}, CreatedAt: base, ExpiresAt: base.Add(time.Minute)}))
	must(s.CreateClientToken(ctx, store.ClientToken{Hash: hashOf("token"), CodeHash: hashOf("code"), ClientID: "client-1", UserID: "uid-alice",
		SessionID: "live", Scope: "openid", CreatedAt: base, ExpiresAt: base.Add(100 * 365 * 24 * time.Hour)}))
	must(s.CreateClientRefresh(ctx, store.ClientRefresh{Hash: hashOf("refresh"), FamilyID: hashOf("code"), ClientID: "client-1", UserID: "uid-alice",
		SessionID: "live", Scope: "openid offline_access", AuthTime: base, AMR: []string{"pwd"}, CreatedAt: base}))
	must(s.PutChallenge(ctx, store.Challenge{ID: hashOf("pending"), Kind: store.ChallengeSecondFactor, UserID: "uid-alice",
		Data: "{}", CreatedAt: base, ExpiresAt: base.Add(100 * 365 * 24 * time.Hour)}))
	must(rotate("live", 0, 1, base.Add(time.Minute)))
	rotatedAt := base.Add(2 * time.Minute)
	must(rotate("live", 1, 2, rotatedAt))
	// A back-channel client that got a token in the session signed out:
	// its logout waits in the outbox (and alice's live grant stays).
	must(s.CreateClient(ctx, store.Client{ID: "client-2", Name: "wiki", SecretHash: hashOf("secret2"), RedirectURIs: []string{"https://w.example.com/cb"},
		BackchannelLogoutURI: "https://w.example.com/bcl", IDTokenAlg: "RS256", CreatedAt: base}))
	must(s.CreateClientToken(ctx, store.ClientToken{Hash: hashOf("token2"), CodeHash: hashOf("code2"), ClientID: "client-2", UserID: "uid-alice",
		SessionID: "logged-out", Scope: "openid", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
	must(s.RevokeSession(ctx, "logged-out", store.ReasonLogout, base.Add(3*time.Minute)))
	must(rotate("reused", 0, 1, base.Add(time.Minute)))
	if err := rotate("reused", 0, 1, base.Add(time.Hour)); !errors.Is(err, store.ErrReuse) {
		t.Fatalf("seeding a reuse: %v", err)
	}
	must(s.SetDisabled(ctx, "uid-bob", true, base.Add(4*time.Minute)))
	must(s.DeleteUser(ctx, "uid-carol", base.Add(5*time.Minute)))
	secret, err := s.Secret(ctx, "refresh-hmac", func() ([]byte, error) { return []byte{0, 1, 2, 0xff, 'x'}, nil })
	must(err)
	for i, kind := range []string{"login", "login_failed", "refresh_reuse", "logout", "admin_user_delete"} {
		must(s.AddEvent(ctx, store.Event{At: base.Add(time.Duration(i) * time.Second), Kind: kind, UserID: "uid-alice",
			Username: "alice", SessionID: "live", IP: "192.0.2.1", UserAgent: "UA", Detail: "d" + kind}))
	}
	for range 2 { // one shared login throttle count, of two failures
		_, err := s.ThrottleFailure(ctx, "throttle-key", base, time.Hour)
		must(err)
	}
	return seeded{path: path, sids: sids, rotatedAt: rotatedAt, secret: secret}
}

func openPG(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestCopy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keepOpen bool
	}{
		{"source closed", false},
		{"source still open", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := seed(t, tc.keepOpen)
			dsn := pgtest.Start(t)
			res, err := Copy(t.Context(), src.path, dsn)
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			want := []Count{{"users", 3, 3}, {"user_groups", 2, 2}, {"sessions", 5, 5}, {"user_revocations", 1, 1}, {"session_amr", 1, 1},
				{"refresh_tokens", 8, 8}, {"totp", 1, 1}, {"recovery_codes", 2, 2}, {"passkeys", 1, 1},
				{"user_identities", 1, 1}, {"session_upstream", 1, 1}, {"challenges", 1, 1},
				{"oidc_clients", 2, 2}, {"oidc_codes", 1, 1}, {"oidc_tokens", 2, 2}, {"oidc_refresh_tokens", 1, 1},
				{"oidc_grants", 1, 1}, {"oidc_logout_outbox", 1, 1},
				{"secrets", 1, 1}, {"revocation_log", 3, 3}, {"events", 5, 5}, {"throttle_counts", 1, 1}}
			if !reflect.DeepEqual(res.Counts, want) {
				t.Errorf("counts = %v, want %v", res.Counts, want)
			}
			checkSame(t, openSQLite(t, src.path), openPG(t, dsn), src)
		})
	}
}

// checkSame compares, through the store interface, everything seed wrote,
// and then checks that the copied state works on the target.
func checkSame(t *testing.T, from *sqlite.Store, to *postgres.Store, src seeded) {
	t.Helper()
	ctx := t.Context()
	for _, name := range []string{"alice", "bob"} {
		a, errA := from.UserByName(ctx, name)
		b, errB := to.UserByName(ctx, name)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("user %s:\nsqlite   %+v %v\npostgres %+v %v", name, a, errA, b, errB)
		}
	}
	if _, err := to.UserByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted carol on the target: %v, want ErrNotFound", err)
	}
	if err := to.CreateUser(ctx, store.User{ID: "uid-new", Username: "carol", CreatedAt: base}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("deleted name carol reusable on the target: %v", err)
	}
	for _, sid := range src.sids {
		a, errA := from.Session(ctx, sid)
		b, errB := to.Session(ctx, sid)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("session %s:\nsqlite   %+v %v\npostgres %+v %v", sid, a, errA, b, errB)
		}
	}
	if a, b := mustGroups(t, from, "uid-alice"), mustGroups(t, to, "uid-alice"); !reflect.DeepEqual(a, b) || len(a) != 2 {
		t.Errorf("alice's groups: sqlite %q, postgres %q", a, b)
	}
	if amr, err := to.SessionAMR(ctx, "live"); err != nil || !reflect.DeepEqual(amr, []string{"pwd", "otp"}) {
		t.Errorf("session amr on the target = %q, %v", amr, err)
	}
	if a, err := to.TOTP(ctx, "uid-alice"); err != nil || a.Secret != "JBSWY3DPEHPK3PXP" || a.LastStep != 42 {
		t.Errorf("totp on the target = %+v, %v", a, err)
	}
	if err := to.UseRecoveryCode(ctx, "uid-alice", hashOf("r1"), base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a used recovery code works on the target: %v", err)
	}
	if n, err := to.RecoveryCodesLeft(ctx, "uid-alice"); err != nil || n != 1 {
		t.Errorf("recovery codes left on the target = %d, %v; want 1", n, err)
	}
	if a, b := mustPasskeys(t, from), mustPasskeys(t, to); !reflect.DeepEqual(a, b) || len(a) != 1 {
		t.Errorf("passkeys:\nsqlite   %+v\npostgres %+v", a, b)
	}
	if c, err := to.ClientByID(ctx, "client-1"); err != nil || c.Name != "grafana" || c.Public || !reflect.DeepEqual(c.RequireGroups, []string{"admins"}) {
		t.Errorf("client on the target = %+v, %v", c, err)
	}
	if tok, err := to.ClientToken(ctx, hashOf("token"), base); err != nil || tok.ClientID != "client-1" {
		t.Errorf("client token on the target = %+v, %v", tok, err)
	}
	if _, err := to.TakeChallenge(ctx, hashOf("pending"), base); err != nil {
		t.Errorf("pending challenge on the target: %v", err)
	}
	since := base.Add(-time.Hour)
	feedA, errA := from.RevokedSince(ctx, since)
	feedB, errB := to.RevokedSince(ctx, since)
	if errA != nil || errB != nil || len(feedA) != 4 || !reflect.DeepEqual(feedA, feedB) {
		t.Errorf("revoked feed:\nsqlite   %v %v\npostgres %v %v", feedA, errA, feedB, errB)
	}
	// The log keeps its positions (relying services' cursors stay valid),
	// and the next revocation on the target continues after them.
	logA, errA := from.RevocationsAfter(ctx, 0, 100)
	logB, errB := to.RevocationsAfter(ctx, 0, 100)
	if errA != nil || errB != nil || len(logA) != 3 || !reflect.DeepEqual(logA, logB) {
		t.Errorf("revocation log:\nsqlite   %v %v\npostgres %v %v", logA, errA, logB, errB)
	}
	fresh := store.Session{ID: "after-copy", UserID: "uid-alice", CreatedAt: base, AuthTime: base, ExpiresAt: base.Add(time.Hour),
		LastUsedAt: base, AccessUntil: base.Add(5 * time.Minute)}
	if err := to.CreateSession(ctx, fresh, hashOf("after-copy")); err != nil {
		t.Errorf("session on the target: %v", err)
	} else if err := to.RevokeSession(ctx, fresh.ID, store.ReasonLogout, base.Add(4*time.Minute)); err != nil {
		t.Errorf("revoke on the target: %v", err)
	} else if next, err := to.RevocationsAfter(ctx, logB[len(logB)-1].Pos, 10); err != nil || len(next) != 1 {
		t.Errorf("after the copied log: %v, %v; want the new revocation alone", next, err)
	}
	evA, errA := from.Events(ctx, "", 0)
	evB, errB := to.Events(ctx, "", 0)
	if errA != nil || errB != nil || len(evA) != 5 || !reflect.DeepEqual(evA, evB) {
		t.Errorf("events:\nsqlite   %v %v\npostgres %v %v", evA, errA, evB, errB)
	}
	noGen := func() ([]byte, error) { return nil, errors.New("the secret must have been copied") }
	if got, err := to.Secret(ctx, "refresh-hmac", noGen); err != nil || !bytes.Equal(got, src.secret) {
		t.Errorf("secret on the target = %x, %v; want %x", got, err, src.secret)
	}

	// The rotation state came along: inside the grace of the last rotation
	// the predecessor converges on the same successor, the current token
	// rotates on, and an older token is reuse.
	req := func(from, to int, at time.Time) store.RotateRequest {
		return store.RotateRequest{PresentedHash: hashOf(tok("live", from)), SuccessorHash: hashOf(tok("live", to)),
			Now: at, Grace: grace, IdleTTL: 168 * time.Hour, AccessExpiry: at.Add(5 * time.Minute)}
	}
	if res, err := to.RotateRefresh(ctx, req(1, 2, src.rotatedAt.Add(10*time.Second))); err != nil || res.Outcome != store.Converged {
		t.Errorf("predecessor inside the grace on the target: %v, %v; want Converged", res.Outcome, err)
	}
	if res, err := to.RotateRefresh(ctx, req(2, 3, src.rotatedAt.Add(20*time.Second))); err != nil || res.Outcome != store.Rotated {
		t.Errorf("current token on the target: %v, %v; want Rotated", res.Outcome, err)
	}
	if _, err := to.RotateRefresh(ctx, req(0, 1, src.rotatedAt.Add(30*time.Second))); !errors.Is(err, store.ErrReuse) {
		t.Errorf("ancestor on the target: %v, want ErrReuse", err)
	}
	// New events follow the copied ones.
	if err := to.AddEvent(ctx, store.Event{Kind: "after"}); err != nil {
		t.Fatal(err)
	}
	if ev, err := to.Events(ctx, "", 1); err != nil || len(ev) != 1 || ev[0].Kind != "after" || ev[0].ID <= evA[0].ID {
		t.Errorf("first new event on the target = %+v, %v; want an id after %d", ev, err, evA[0].ID)
	}
}

func mustGroups(t *testing.T, s store.Store, userID string) []string {
	t.Helper()
	g, err := s.Groups(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mustPasskeys(t *testing.T, s store.Store) []store.Passkey {
	t.Helper()
	p, err := s.Passkeys(t.Context(), "uid-alice")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCopyRefusesNonEmpty: a second copy into the same database is refused
// and changes nothing.
func TestCopyRefusesNonEmpty(t *testing.T) {
	src := seed(t, false)
	dsn := pgtest.Start(t)
	if _, err := Copy(t.Context(), src.path, dsn); err != nil {
		t.Fatalf("first Copy: %v", err)
	}
	pg := openPG(t, dsn)
	if err := pg.AddEvent(t.Context(), store.Event{Kind: "marker"}); err != nil {
		t.Fatal(err)
	}
	before, err := pg.Events(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Copy(t.Context(), src.path, dsn)
	if !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "3 users") {
		t.Fatalf("second Copy: %v, want ErrTargetNotEmpty naming what is there", err)
	}
	after, err := pg.Events(t.Context(), "", 0)
	if err != nil || !reflect.DeepEqual(before, after) {
		t.Fatalf("the refused copy changed the target: %v", err)
	}
}

// TestCopyReplacesSecrets: an issuer that only started on the target made
// its own secrets; the copied sessions need the source's.
func TestCopyReplacesSecrets(t *testing.T) {
	src := seed(t, false)
	dsn := pgtest.Start(t)
	pg := openPG(t, dsn)
	if _, err := pg.Secret(t.Context(), "refresh-hmac", func() ([]byte, error) { return []byte("target's own"), nil }); err != nil {
		t.Fatal(err)
	}
	res, err := Copy(t.Context(), src.path, dsn)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if !reflect.DeepEqual(res.ReplacedSecrets, []string{"refresh-hmac"}) {
		t.Errorf("ReplacedSecrets = %q", res.ReplacedSecrets)
	}
	got, err := openPG(t, dsn).Secret(t.Context(), "refresh-hmac", nil)
	if err != nil || !bytes.Equal(got, src.secret) {
		t.Fatalf("secret after the copy = %q, %v; want the source's", got, err)
	}
}

func TestCopyErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database\n"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	newer := seed(t, false).path
	if err := bumpVersion(newer); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing source", filepath.Join(dir, "nope.db"), "no such file"},
		{"not a database", garbage, "not a database"},
		{"newer source schema", newer, fmt.Sprintf("schema version %d", schemaVersion+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.Start(t)
			_, err := Copy(t.Context(), tc.path, dsn)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Copy: %v, want an error containing %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "nope.db")); !errors.Is(err, os.ErrNotExist) {
				t.Error("Copy created the missing source file")
			}
		})
	}
}
