package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// TestGroups walks the group commands in order: each step's exit code and
// output, then the resulting memberships.
func TestGroups(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys")}
	long := strings.Repeat("g", 32)
	steps := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		out     string // in stdout
		errText string // in stderr
	}{
		{"add with groups, repeated and a list", "secret password\n",
			[]string{"user", "add", "alice", "--group", "admins", "--group", "ops, dev,ops"}, ExitOK, "in admins, ops, dev", ""},
		{"add without groups", "secret password\n", []string{"user", "add", "bob"}, ExitOK, "created user bob", ""},
		{"invalid group at add creates nobody", "secret password\n", []string{"user", "add", "carol", "--group", "Admins"}, ExitUsage, "", "group name"},
		{"carol was not created", "", []string{"group", "list", "carol"}, ExitFailure, "", "no user carol"},
		{"group on another command", "", []string{"user", "list", "--group", "x"}, ExitUsage, "", "--group goes with user add"},
		{"group add", "", []string{"group", "add", "BOB", "ops"}, ExitOK, "added bob to ops", ""},
		{"group add again", "", []string{"group", "add", "bob", "ops"}, ExitOK, "already in ops", ""},
		{"group add invalid", "", []string{"group", "add", "bob", "a b"}, ExitUsage, "", "group name"},
		{"group add unknown user", "", []string{"group", "add", "nobody", "ops"}, ExitFailure, "", "no user nobody"},
		{"group add the longest name", "", []string{"group", "add", "alice", long}, ExitOK, "added alice", ""},
		{"group remove", "", []string{"group", "remove", "alice", "dev"}, ExitOK, "removed alice from dev", ""},
		{"group remove not a member", "", []string{"group", "remove", "alice", "dev"}, ExitFailure, "", "alice is not in group dev"},
		{"group without command", "", []string{"group"}, ExitUsage, "", "add, remove or list"},
		{"group add missing group", "", []string{"group", "add", "alice"}, ExitUsage, "", "USER GROUP"},
		{"group list too many arguments", "", []string{"group", "list", "a", "b"}, ExitUsage, "", "[USER]"},
		{"unknown group command", "", []string{"group", "rename", "a", "b"}, ExitUsage, "", "unknown group command"},
		{"one user's groups", "", []string{"group", "list", "alice"}, ExitOK, "admins\n" + long + "\nops\n", ""},
		{"help", "", []string{"group", "--help"}, ExitOK, "remove USER GROUP", ""},
	}
	for _, st := range steps {
		code, out, errOut := run(t, st.stdin, append(st.args, flags...)...)
		if code != st.code || !strings.Contains(out, st.out) || !strings.Contains(errOut, st.errText) {
			t.Fatalf("%s: exit %d, want %d\nstdout: %q (want %q)\nstderr: %q (want %q)", st.name, code, st.code, out, st.out, errOut, st.errText)
		}
	}
	code, out, _ := run(t, "", append([]string{"group", "list"}, flags...)...)
	want := [][]string{{"GROUP", "USERNAME"}, {"admins", "alice"}, {long, "alice"}, {"ops", "alice"}, {"ops", "bob"}}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != ExitOK || len(lines) != len(want) {
		t.Fatalf("group list: exit %d\n%s", code, out)
	}
	for i, l := range lines {
		if f := strings.Fields(l); strings.Join(f, " ") != strings.Join(want[i], " ") {
			t.Errorf("group list line %d = %q, want %q", i, l, want[i])
		}
	}
	code, out, _ = run(t, "", append([]string{"events"}, flags...)...)
	if code != ExitOK || !strings.Contains(out, "admin_group_add") || !strings.Contains(out, "admin_group_remove") {
		t.Fatalf("events do not record group changes: %d\n%s", code, out)
	}
}

func TestCheckGroupsBudget(t *testing.T) {
	var names []string
	for i := range 20 {
		names = append(names, strings.Repeat(string(rune('a'+i)), 10))
	}
	tests := []struct {
		name     string
		existing []string
		add      []string
		want     int // groups to add; -1 for an error
	}{
		{"none", nil, nil, 0},
		{"duplicates dropped", []string{"ops"}, []string{"ops", "dev", "dev"}, 1},
		{"within the budget", nil, names[:13], 13},
		{"over the budget", nil, names, -1},
		{"over with the existing", names[:13], names[13:], -1},
		{"invalid name", nil, []string{"ok", "NOT"}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkGroups(tc.existing, tc.add)
			if tc.want < 0 {
				if err == nil {
					t.Fatalf("checkGroups = %q, want an error", got)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("checkGroups = %q, %v; want %d groups", got, err, tc.want)
			}
		})
	}
}

// TestResetFactors: `user reset-factors` removes every second factor, so
// the password alone signs in again.
func TestResetFactors(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys")}
	if code, _, errOut := run(t, "secret password\n", append([]string{"user", "add", "alice"}, flags...)...); code != ExitOK {
		t.Fatalf("user add: %s", errOut)
	}
	s, err := openStore(flags[1])
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	u, _ := s.UserByName(ctx, "alice")
	if err := s.EnableTOTP(ctx, store.TOTP{UserID: u.ID, Secret: "JBSWY3DPEHPK3PXP", CreatedAt: time.Now()}, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"k1", "k2"} {
		if err := s.AddPasskey(ctx, store.Passkey{ID: id, UserID: u.ID, Credential: "{}", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	code, out, errOut := run(t, "", append([]string{"user", "reset-factors", "alice"}, flags...)...)
	if code != ExitOK || !strings.Contains(out, "the authenticator app, 2 passkey(s) and the recovery codes") {
		t.Fatalf("reset-factors: %d %q %q", code, out, errOut)
	}
	s, err = openStore(flags[1])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, terr := s.TOTP(ctx, u.ID)
	keys, _ := s.Passkeys(ctx, u.ID)
	left, _ := s.RecoveryCodesLeft(ctx, u.ID)
	if terr == nil || len(keys) != 0 || left != 0 {
		t.Fatalf("after reset: totp %v, %d passkeys, %d codes", terr, len(keys), left)
	}
	if code, out, _ := run(t, "", append([]string{"user", "reset-factors", "alice"}, flags...)...); code != ExitOK || !strings.Contains(out, "no authenticator app, 0 passkey(s)") {
		t.Fatalf("second reset: %d %q", code, out)
	}
	if code, _, _ := run(t, "", append([]string{"user", "reset-factors", "nobody"}, flags...)...); code != ExitFailure {
		t.Fatalf("unknown user: %d", code)
	}
}
