package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/envflag"
	"github.com/canopy-sso/canopy/pkg/username"
)

// link runs `issuer user link NAME --idp P --subject SUB` and `user unlink
// NAME --idp P`. --idp names the provider; its issuer comes from the
// providers configured by full --idp entries or, when there are none on
// the command line, by CANOPY_ISSUER_IDP (the same as serve's).
func (inv *invocation) link(ctx context.Context, cmd string, args []string) error {
	if len(args) != 1 {
		return usagef("user %s takes one NAME", cmd)
	}
	if err := inv.cfg.IDPs.Err(); err != nil {
		return usagef("%v", err)
	}
	var name string
	var specs config.IDPs
	for _, p := range inv.cfg.IDPs {
		if p.Issuer == "" && p.ClientID == "" && p.ClientSecretFile == "" {
			if name != "" {
				return usagef("user %s takes one --idp NAME", cmd)
			}
			name = p.Name
			continue
		}
		specs = append(specs, p)
	}
	if name == "" {
		return usagef("user %s needs --idp NAME, the provider's name", cmd)
	}
	if len(specs) == 0 && inv.env != nil {
		if v, ok := inv.env(envflag.EnvName("CANOPY_ISSUER_", "idp")); ok {
			_ = specs.Set(v)
			if err := specs.Err(); err != nil {
				return fmt.Errorf("environment CANOPY_ISSUER_IDP: %w", err)
			}
		}
	}
	inv.cfg.IDPs = specs
	p, ok := inv.cfg.IDP(name)
	if !ok && cmd == "link" {
		return usagef("no provider %q is configured (give it with --idp 'name=%s,issuer=…' or CANOPY_ISSUER_IDP)", name, name)
	}
	if cmd == "link" && inv.subject == "" {
		return usagef("user link needs --subject SUB, the person's subject at %s", name)
	}
	if cmd == "unlink" && inv.subject != "" {
		return usagef("user unlink takes no --subject")
	}
	if len(inv.subject) > 255 {
		return usagef("--subject is longer than 255 characters")
	}
	e, err := inv.open(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	uname, err := username.Lookup(args[0])
	if err != nil {
		return usagef("username %q %v", args[0], err)
	}
	u, err := e.store.UserByName(ctx, uname)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", uname)
	}
	if err != nil {
		return err
	}
	ev := store.Event{At: time.Now(), UserID: u.ID, Username: u.Username}
	if cmd == "unlink" {
		issuer, err := linkedIssuer(ctx, e.store, u.ID, name, p.Issuer)
		if err != nil {
			return err
		}
		if issuer == "" {
			return fmt.Errorf("user %q has no link to %s", uname, name)
		}
		// An administrator may unlink the last way in (then set a password).
		err = e.store.UnlinkIdentity(ctx, u.ID, issuer, false)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("user %q has no link to %s", uname, name)
		}
		if err != nil {
			return err
		}
		ev.Kind, ev.Detail = "upstream_unlink", name+" (by an administrator)"
		fmt.Fprintf(inv.io.Stdout, "unlinked %s from %s\n", uname, name)
		return e.store.AddEvent(ctx, ev)
	}
	err = e.store.LinkIdentity(ctx, store.Identity{Issuer: p.Issuer, Subject: inv.subject, UserID: u.ID, Provider: name, CreatedAt: time.Now()})
	if errors.Is(err, store.ErrConflict) {
		if other, lerr := e.store.Identity(ctx, p.Issuer, inv.subject); lerr == nil {
			if ou, uerr := e.store.UserByID(ctx, other.UserID); uerr == nil {
				return fmt.Errorf("subject %q at %s is linked to user %q already", inv.subject, name, ou.Username)
			}
			return fmt.Errorf("subject %q at %s is linked to another user already", inv.subject, name)
		}
		return fmt.Errorf("user %q has an account at %s linked already; unlink it first", uname, name)
	}
	if err != nil {
		return err
	}
	ev.Kind, ev.Detail = "upstream_link", name+" (by an administrator)"
	fmt.Fprintf(inv.io.Stdout, "linked %s to subject %q at %s\n", uname, inv.subject, name)
	return e.store.AddEvent(ctx, ev)
}

// linkedIssuer finds the issuer of the user's link to the provider name:
// the link recorded under that name, or else the one to the configured
// issuer. A link unlinks even after its provider left the configuration or
// moved to another issuer URL. "" when there is none.
func linkedIssuer(ctx context.Context, st store.Store, userID, name, configured string) (string, error) {
	ids, err := st.Identities(ctx, userID)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if id.Provider == name {
			return id.Issuer, nil
		}
	}
	for _, id := range ids {
		if configured != "" && id.Issuer == configured {
			return id.Issuer, nil
		}
	}
	return "", nil
}
