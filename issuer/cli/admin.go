package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/keys"
	"github.com/canopy-sso/canopy/pkg/username"
)

func (inv *invocation) user(ctx context.Context) error {
	if len(inv.args) == 0 {
		return usagef("user needs a command: add, disable, enable, set-password, reset-factors, delete, list, link or unlink")
	}
	cmd, args := inv.args[0], inv.args[1:]
	if cmd == "link" || cmd == "unlink" {
		return inv.link(ctx, cmd, args)
	}
	if inv.subject != "" {
		return usagef("--subject goes with user link")
	}
	want := 1
	if cmd == "list" {
		want = 0
	}
	switch cmd {
	case "add", "disable", "enable", "set-password", "reset-factors", "delete", "list":
	default:
		return usagef("unknown user command %q", cmd)
	}
	if len(args) != want {
		if want == 0 {
			return usagef("user list takes no arguments")
		}
		return usagef("user %s takes one NAME", cmd)
	}
	if len(inv.groups) > 0 && cmd != "add" {
		return usagef("--group goes with user add; use issuer group add|remove USER GROUP")
	}
	groups, err := checkGroups(nil, inv.groups)
	if err != nil {
		return err
	}
	e, err := inv.open(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	now := time.Now()
	out := inv.io.Stdout
	if cmd == "list" {
		users, err := e.store.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tSTATUS\tCREATED\tID")
		for _, u := range users {
			status := "active"
			if u.Disabled {
				status = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, status, u.CreatedAt.UTC().Format(time.RFC3339), u.ID)
		}
		return tw.Flush()
	}
	// Reservation stops new names only: a user who had a name before it
	// was reserved is still managed by it.
	normalize := username.Lookup
	if cmd == "add" {
		normalize = e.names.Normalize
	}
	name, err := normalize(args[0])
	if err != nil {
		return usagef("username %q %v", args[0], err)
	}
	if cmd == "add" {
		hash, err := inv.passwordFromStdin(ctx)
		if err != nil {
			return err
		}
		u := store.User{ID: store.NewID(), Username: name, PasswordHash: hash, CreatedAt: now}
		if err := e.store.CreateUser(ctx, u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("user %s exists (or existed: names are never reused)", name)
			}
			return err
		}
		inv.audit(ctx, e, "admin_user_add", u)
		if err := inv.addGroups(ctx, e, u, groups); err != nil {
			return err
		}
		fmt.Fprintf(out, "created user %s (id %s)", name, u.ID)
		if len(groups) > 0 {
			fmt.Fprintf(out, " in %s", strings.Join(groups, ", "))
		}
		fmt.Fprintln(out)
		return nil
	}
	u, err := e.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %s", name)
	}
	if err != nil {
		return err
	}
	switch cmd {
	case "disable", "enable":
		if err := e.store.SetDisabled(ctx, u.ID, cmd == "disable", now); err != nil {
			return err
		}
		inv.audit(ctx, e, "admin_user_"+cmd, u)
		fmt.Fprintf(out, "%sd user %s\n", cmd, name)
	case "set-password":
		hash, err := inv.passwordFromStdin(ctx)
		if err != nil {
			return err
		}
		if err := e.store.SetPassword(ctx, u.ID, hash, "", now); err != nil {
			return err
		}
		inv.audit(ctx, e, "password_change", u)
		fmt.Fprintf(out, "set the password of %s; every session of theirs has ended\n", name)
	case "reset-factors":
		what, err := resetFactors(ctx, e.store, u)
		if err != nil {
			return err
		}
		inv.auditDetail(ctx, e, "admin_reset_factors", u, "removed "+what)
		fmt.Fprintf(out, "removed %s of %s; their password alone signs in again\n", what, name)
	case "delete":
		if err := e.store.DeleteUser(ctx, u.ID, now); err != nil {
			return err
		}
		inv.audit(ctx, e, "admin_user_delete", u)
		fmt.Fprintf(out, "deleted user %s; the name stays reserved\n", name)
	}
	return nil
}

// passwordFromStdin reads the first line of stdin, checks the policy and hashes it.
func (inv *invocation) passwordFromStdin(ctx context.Context) (string, error) {
	pw, err := readPassword(inv.io.Stdin)
	if err != nil {
		return "", err
	}
	if msg := password.CheckPolicy(pw); msg != "" {
		return "", errors.New(msg)
	}
	h, err := password.NewHasher(password.OWASP, 1)
	if err != nil {
		return "", err
	}
	return h.Hash(ctx, pw)
}

func (inv *invocation) audit(ctx context.Context, e *env, kind string, u store.User) {
	if err := e.store.AddEvent(ctx, store.Event{At: time.Now(), Kind: kind, UserID: u.ID, Username: u.Username, Detail: "command line"}); err != nil {
		inv.log.Warn("audit event not recorded", "kind", kind, "err", err)
	}
}

func (inv *invocation) keys(ctx context.Context) error {
	if len(inv.args) == 0 {
		return usagef("keys needs a command: list, rotate or revoke")
	}
	cmd, args := inv.args[0], inv.args[1:]
	switch {
	case cmd == "list" && len(args) == 0, cmd == "rotate" && len(args) == 0, cmd == "revoke" && len(args) == 1:
	case cmd == "list" || cmd == "rotate" || cmd == "revoke":
		return usagef("usage: issuer keys list | rotate [--force] | revoke KID")
	default:
		return usagef("unknown keys command %q", cmd)
	}
	// Open, never Ensure: these commands do not serve, so their flags are
	// not recorded in the directory. The values the serving instances
	// recorded set the waits and deadlines; these flags can only lengthen
	// them.
	kopts := keyOptions(&inv.cfg)
	d, err := keys.Open(inv.cfg.Keys, kopts)
	if err != nil {
		return err
	}
	out := inv.io.Stdout
	switch cmd {
	case "list":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tALG\tSTATE\tPUBLISHED\tPROMOTABLE\tACTIVATED\tRETIRED\tDELETE AFTER")
		for _, k := range d.List() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State, stamp(k.Published), stamp(k.Promotable), stamp(k.Activated), stamp(k.Retired), stamp(k.DeleteAfter))
		}
		return tw.Flush()
	case "rotate":
		if err := d.Rotate(inv.force); err != nil {
			var early *keys.TooEarlyError
			if errors.As(err, &early) {
				return fmt.Errorf("%v (use --force to rotate anyway; relying services that cached the key set may reject new tokens until they refetch)", err)
			}
			return err
		}
		inv.auditKeys(ctx, "key_rotate", "next key promoted to active")
		fmt.Fprintln(out, "rotated; running issuers pick up the change within seconds")
	case "revoke":
		if err := d.Revoke(args[0]); err != nil {
			return err
		}
		inv.auditKeys(ctx, "key_revoke", "revoked key "+args[0])
		fmt.Fprintf(out, "revoked key %s; relying services drop it at their next key refresh\n", args[0])
	}
	return nil
}

// auditKeys records a key change in the audit trail. The change is already
// made: a database that cannot be reached only costs the record, with a warning.
func (inv *invocation) auditKeys(ctx context.Context, kind, detail string) {
	s, err := openStore(inv.cfg.DB)
	if err != nil {
		inv.log.Warn("audit event not recorded", "kind", kind, "err", err)
		return
	}
	defer s.Close()
	if err := s.AddEvent(ctx, store.Event{At: time.Now(), Kind: kind, Detail: detail + " (command line)"}); err != nil {
		inv.log.Warn("audit event not recorded", "kind", kind, "err", err)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
