package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/canopy-sso/canopy/issuer/store/postgres"
	"github.com/canopy-sso/canopy/issuer/store/storecopy"
)

// copyFlags are the flags of `issuer store copy`.
type copyFlags struct {
	from, to string
}

func (c *copyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.from, "from", "", "store copy: the SQLite file to copy from")
	fs.StringVar(&c.to, "to", "", "store copy: the postgres:// URL of an empty database to copy to")
}

// store runs `issuer store copy --from FILE --to URL`: it moves an issuer's
// state from SQLite to PostgreSQL and prints the row counts it verified.
func (inv *invocation) store(ctx context.Context) error {
	if len(inv.args) == 0 {
		return usagef("store needs a command: copy")
	}
	if cmd := inv.args[0]; cmd != "copy" {
		return usagef("unknown store command %q", cmd)
	}
	if len(inv.args) > 1 {
		return usagef("store copy takes no arguments, got %q; give --from and --to", inv.args[1:])
	}
	from, to := inv.copy.from, inv.copy.to
	if from == "" || to == "" {
		return usagef("store copy needs --from SQLITE_FILE and --to postgres://…")
	}
	if isPostgresURL(from) {
		return usagef("--from must be a SQLite file: copying goes from SQLite to PostgreSQL")
	}
	if !isPostgresURL(to) {
		return usagef("--to must be a postgres:// URL")
	}
	res, err := storecopy.Copy(ctx, from, to)
	if err != nil {
		return err
	}
	out := inv.io.Stdout
	fmt.Fprintf(out, "copied %s to %s\n", from, postgres.Redact(to))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSOURCE\tTARGET")
	for _, c := range res.Counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.Table, c.Source, c.Target)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, name := range res.ReplacedSecrets {
		fmt.Fprintf(out, "replaced the target's server secret %q with the source's; restart any issuer already running on the target\n", name)
	}
	return nil
}
