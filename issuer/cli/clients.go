package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/canopy-sso/canopy/issuer/clients"
	"github.com/canopy-sso/canopy/issuer/store"
)

// listFlag is a repeatable flag: each use adds one value.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

// Set adds one value.
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// clientFlags are the flags of `issuer client add`.
type clientFlags struct {
	redirectURIs, postLogoutURIs, requireGroups listFlag
	public                                      bool
	backchannelURI, idTokenAlg                  string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.redirectURIs, "redirect-uri", "client add: a redirect URI, matched exactly (repeatable)")
	fs.BoolVar(&c.public, "public", false, "client add: a public client (no secret; PKCE required)")
	fs.StringVar(&c.backchannelURI, "backchannel-logout-uri", "", "client add: the client's back-channel logout URI")
	fs.Var(&c.postLogoutURIs, "post-logout-redirect-uri", "client add: a URI the end-session endpoint may return to (repeatable)")
	fs.StringVar(&c.idTokenAlg, "id-token-alg", "", "client add: RS256 (default), ES256 or EdDSA")
	fs.Var(&c.requireGroups, "require-group", "client add: admit only members of this group (repeatable: any of them)")
}

// client runs `issuer client add|list|remove|rotate-secret`.
func (inv *invocation) client(ctx context.Context) error {
	if len(inv.args) == 0 {
		return usagef("client needs a command: add, list, remove or rotate-secret")
	}
	cmd, args := inv.args[0], inv.args[1:]
	switch {
	case cmd == "list" && len(args) == 0, (cmd == "add" || cmd == "remove" || cmd == "rotate-secret") && len(args) == 1:
	case cmd == "add":
		return usagef("usage: issuer client add NAME --redirect-uri URI [--redirect-uri URI…] [--public] [--backchannel-logout-uri URI] [--post-logout-redirect-uri URI…] [--id-token-alg RS256|ES256|EdDSA] [--require-group G…]")
	case cmd == "list":
		return usagef("usage: issuer client list")
	case cmd == "remove" || cmd == "rotate-secret":
		return usagef("usage: issuer client %s NAME|CLIENT_ID", cmd)
	default:
		return usagef("unknown client command %q", cmd)
	}
	if cmd != "add" && inv.usedClientFlags() {
		return usagef("client %s takes no client add flags", cmd)
	}
	var spec clients.Spec
	if cmd == "add" {
		f := inv.clientFlags
		spec = clients.Spec{Name: args[0], RedirectURIs: f.redirectURIs, Public: f.public, BackchannelLogoutURI: f.backchannelURI,
			PostLogoutRedirectURIs: f.postLogoutURIs, IDTokenAlg: f.idTokenAlg, RequireGroups: f.requireGroups}
		if _, _, err := clients.New(spec, time.Now()); err != nil {
			return usagef("%v", err)
		}
	}
	s, err := openStore(inv.cfg.DB)
	if err != nil {
		return err
	}
	defer s.Close()
	out := inv.io.Stdout
	switch cmd {
	case "add":
		c, secret, err := clients.New(spec, time.Now())
		if err != nil {
			return usagef("%v", err)
		}
		if err := s.CreateClient(ctx, c); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("a client named %s exists already", c.Name)
			}
			return err
		}
		inv.auditClient(ctx, s, "admin_client_add", c, "client added")
		return json.NewEncoder(out).Encode(struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret,omitempty"`
		}{c.ID, secret})
	case "list":
		cs, err := s.ListClients(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCLIENT_ID\tTYPE\tID_TOKEN_ALG\tREQUIRE_GROUPS\tREDIRECT_URIS")
		for _, c := range cs {
			typ := "confidential"
			if c.Public {
				typ = "public"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.ID, typ, c.IDTokenAlg, orDash(strings.Join(c.RequireGroups, ",")), strings.Join(c.RedirectURIs, " "))
		}
		return tw.Flush()
	}
	c, err := findClient(ctx, s, args[0])
	if err != nil {
		return err
	}
	switch cmd {
	case "remove":
		if err := s.RemoveClient(ctx, c.ID); err != nil {
			return err
		}
		inv.auditClient(ctx, s, "admin_client_remove", c, "client removed")
		fmt.Fprintf(out, "removed client %s; its codes and access tokens stop working at once\n", c.Name)
	case "rotate-secret":
		if c.Public {
			return fmt.Errorf("client %s is public: it has no secret", c.Name)
		}
		secret, err := clients.NewSecret()
		if err != nil {
			return err
		}
		if err := s.SetClientSecret(ctx, c.ID, clients.HashSecret(secret), time.Now()); err != nil {
			return err
		}
		inv.auditClient(ctx, s, "admin_client_rotate_secret", c, "client secret replaced")
		return json.NewEncoder(out).Encode(struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}{c.ID, secret})
	}
	return nil
}

func (inv *invocation) usedClientFlags() bool {
	f := inv.clientFlags
	return len(f.redirectURIs)+len(f.postLogoutURIs)+len(f.requireGroups) > 0 || f.public || f.backchannelURI != "" || f.idTokenAlg != ""
}

// findClient looks a client up by name, then by client_id.
func findClient(ctx context.Context, s store.Store, ref string) (store.Client, error) {
	c, err := s.ClientByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		c, err = s.ClientByID(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Client{}, fmt.Errorf("no client named %s", store.Printable(ref))
	}
	return c, err
}

// auditClient records a client change; the change is made, so a failure
// only costs the record, with a warning.
func (inv *invocation) auditClient(ctx context.Context, s store.Store, kind string, c store.Client, detail string) {
	if err := s.AddEvent(ctx, store.Event{At: time.Now(), Kind: kind, Detail: detail + ": " + c.Name + " (" + c.ID + ", command line)"}); err != nil {
		inv.log.Warn("audit event not recorded", "kind", kind, "err", err)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
