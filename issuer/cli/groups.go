package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/username"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// groupFlag is the repeatable --group of `issuer user add`: each use adds
// one group or a comma-separated list.
type groupFlag []string

func (g *groupFlag) String() string { return strings.Join(*g, ",") }

// Set adds the groups of one --group value.
func (g *groupFlag) Set(v string) error {
	for name := range strings.SplitSeq(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*g = append(*g, name)
		}
	}
	return nil
}

// maxGroupBytes bounds the groups of one user, measured as they appear in
// the token's JSON ("name", each): every access token carries them, and
// SPEC.md keeps a token under 1 KiB.
const maxGroupBytes = 180

// checkGroups validates names for a user who already has existing, and
// returns them without duplicates.
func checkGroups(existing, names []string) ([]string, error) {
	var add []string
	size := 0
	for _, g := range existing {
		size += len(g) + 3
	}
	for _, g := range names {
		if err := wire.CheckGroupName(g); err != nil {
			return nil, usagef("%v", err)
		}
		if slices.Contains(existing, g) || slices.Contains(add, g) {
			continue
		}
		add = append(add, g)
		size += len(g) + 3
	}
	if size > maxGroupBytes {
		return nil, fmt.Errorf("too many groups: a user's group names may take at most %d characters in all (each counts 3 more), "+
			"because every access token carries them", maxGroupBytes)
	}
	return add, nil
}

// group runs `issuer group add|remove USER GROUP` and `issuer group list [USER]`.
func (inv *invocation) group(ctx context.Context) error {
	if len(inv.args) == 0 {
		return usagef("group needs a command: add, remove or list")
	}
	cmd, args := inv.args[0], inv.args[1:]
	switch {
	case (cmd == "add" || cmd == "remove") && len(args) == 2, cmd == "list" && len(args) <= 1:
	case cmd == "add" || cmd == "remove":
		return usagef("usage: issuer group %s USER GROUP", cmd)
	case cmd == "list":
		return usagef("usage: issuer group list [USER]")
	default:
		return usagef("unknown group command %q", cmd)
	}
	e, err := inv.open(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	out := inv.io.Stdout
	if cmd == "list" && len(args) == 0 {
		ms, err := e.store.Memberships(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tUSERNAME")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\n", m.Group, m.Username)
		}
		return tw.Flush()
	}
	u, err := inv.lookupUser(ctx, e, args[0])
	if err != nil {
		return err
	}
	existing, err := e.store.Groups(ctx, u.ID)
	if err != nil {
		return err
	}
	switch cmd {
	case "list":
		for _, g := range existing {
			fmt.Fprintln(out, g)
		}
	case "add":
		add, err := checkGroups(existing, args[1:])
		if err != nil {
			return err
		}
		if len(add) == 0 {
			fmt.Fprintf(out, "%s is already in %s\n", u.Username, args[1])
			return nil
		}
		if err := e.store.AddGroup(ctx, u.ID, add[0]); err != nil {
			return err
		}
		inv.auditDetail(ctx, e, "admin_group_add", u, "added to group "+add[0])
		fmt.Fprintf(out, "added %s to %s; their tokens carry it from their next refresh\n", u.Username, add[0])
	case "remove":
		err := e.store.RemoveGroup(ctx, u.ID, args[1])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s is not in group %s", u.Username, args[1])
		}
		if err != nil {
			return err
		}
		inv.auditDetail(ctx, e, "admin_group_remove", u, "removed from group "+args[1])
		fmt.Fprintf(out, "removed %s from %s; tokens already issued keep it until they expire (--access-ttl)\n", u.Username, args[1])
	}
	return nil
}

// lookupUser finds a user by the name typed on the command line, reserved
// or not: a reservation stops new names only.
func (inv *invocation) lookupUser(ctx context.Context, e *env, typed string) (store.User, error) {
	name, err := username.Lookup(typed)
	if err != nil {
		return store.User{}, usagef("username %q %v", typed, err)
	}
	u, err := e.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("no user %s", name)
	}
	return u, err
}

// addGroups gives a user just created by `user add --group` its groups.
func (inv *invocation) addGroups(ctx context.Context, e *env, u store.User, groups []string) error {
	for _, g := range groups {
		if err := e.store.AddGroup(ctx, u.ID, g); err != nil {
			return fmt.Errorf("created user %s, but adding group %s failed: %w", u.Username, g, err)
		}
		inv.auditDetail(ctx, e, "admin_group_add", u, "added to group "+g)
	}
	return nil
}

// auditDetail records an administrative event with a detail.
func (inv *invocation) auditDetail(ctx context.Context, e *env, kind string, u store.User, detail string) {
	ev := store.Event{At: time.Now(), Kind: kind, UserID: u.ID, Username: u.Username, Detail: detail + " (command line)"}
	if err := e.store.AddEvent(ctx, ev); err != nil {
		inv.log.Warn("audit event not recorded", "kind", kind, "err", err)
	}
}
