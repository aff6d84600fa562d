// Package cli is the issuer's command line: flags and environment, the serve
// command and the user and keys administration commands.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/pkg/envflag"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Env is how the command reads its environment (os.LookupEnv in main).
type Env func(string) (string, bool)

// IO is the command's standard streams.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// invocation is one parsed command line.
type invocation struct {
	cfg    config.Config
	force  bool
	copy   copyFlags
	groups groupFlag
	// subject is user link's --subject; env the command's environment,
	// where user link finds the providers when --idp names one.
	subject string
	env     Env
	// clientFlags are `issuer client add`'s.
	clientFlags clientFlags
	args        []string
	io          IO
	log         *slog.Logger
	// metrics, set by serve before it opens the store, observes it.
	metrics *metrics.Issuer
}

func flagSet(cfg *config.Config, force *bool, cp *copyFlags, groups *groupFlag, subject *string, oc *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("issuer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to serve on")
	fs.Var(cfg.URLFlag(), "url", "the issuer's public URL; the token's iss. Repeat it (or give a comma list) to serve several root domains: the first is the primary, where people sign in")
	fs.Var(cfg.CookieDomainFlag(), "cookie-domain", "parent domain of every relying host; the token's aud (default: host of --url). Repeat it in --url's order for several root domains")
	fs.StringVar(&cfg.DB, "db", cfg.DB, "SQLite file, or a postgres:// URL for PostgreSQL")
	fs.StringVar(&cfg.SQLiteCommit, "sqlite-commit", cfg.SQLiteCommit, "SQLite: group (rotations share a transaction and its fsync) or each (one per rotation, slower; for comparison)")
	fs.StringVar(&cfg.Keys, "keys", cfg.Keys, "directory of signing keys")
	fs.StringVar(&cfg.Alg, "alg", cfg.Alg, "signing algorithm for new keys: EdDSA or ES256")
	fs.DurationVar(&cfg.AccessTTL, "access-ttl", cfg.AccessTTL, "lifetime of the access token")
	fs.DurationVar(&cfg.JWKSMaxAge, "jwks-max-age", cfg.JWKSMaxAge, "Cache-Control max-age of the JWKS; a new key is published at least this long before it signs")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "absolute lifetime of a login session")
	fs.DurationVar(&cfg.IdleTTL, "idle-ttl", cfg.IdleTTL, "a session unused this long ends")
	fs.DurationVar(&cfg.StreamHeartbeat, "stream-heartbeat", cfg.StreamHeartbeat, "gap between heartbeats on an idle revocation stream (at most 15s; below the proxy's read timeout)")
	fs.DurationVar(&cfg.RefreshGrace, "refresh-grace", cfg.RefreshGrace, "how long a rotated refresh token still converges")
	fs.StringVar(&cfg.Registration, "registration", cfg.Registration, "open or closed")
	fs.StringVar(&cfg.ReservedNames, "reserved-names", cfg.ReservedNames, "file of extra reserved usernames, one a line")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", cfg.MetricsListen, "address of a separate /metrics listener (off when empty)")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", cfg.TrustedProxies, "comma-separated CIDRs whose X-Forwarded-For/-Proto are believed")
	fs.DurationVar(&cfg.EventRetention, "event-retention", cfg.EventRetention, "audit events older than this are deleted (0 keeps them forever)")
	fs.StringVar(&cfg.UserPageURL, "user-page-url", cfg.UserPageURL, "the account page's link to a user's own page, {username} its first host label (e.g. https://{username}.domain.com:8443; default: --url's scheme on {username}.<cookie domain>)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "serve HTTPS directly with this PEM certificate chain (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key for --tls-cert")
	fs.Var(&cfg.IDPs, "idp", "an upstream OpenID provider: 'name=corp,issuer=https://…,client-id=ID,client-secret-file=PATH[,…]' (repeatable; ';' separates several); user link|unlink: the provider's name")
	fs.StringVar(&cfg.PasswordLogin, "password-login", cfg.PasswordLogin, "on, or off to sign in only through --idp providers")
	fs.StringVar(subject, "subject", "", "user link: the person's subject (sub) at the --idp provider")
	fs.BoolVar(force, "force", false, "keys rotate: rotate even if the next key is not yet published long enough")
	cp.register(fs)
	fs.Var(groups, "group", "user add: a group of the new user (repeat it, or give a comma list)")
	oc.register(fs)
	return fs
}

// Main runs the issuer command line and returns the exit code.
func Main(ctx context.Context, args []string, env Env, std IO) int {
	inv := &invocation{cfg: config.Default(), io: std, env: env}
	fs := flagSet(&inv.cfg, &inv.force, &inv.copy, &inv.groups, &inv.subject, &inv.clientFlags)
	pos, err := envflag.Parse(fs, args, "CANOPY_ISSUER_", env)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(std.Stdout, helpText(pos, fs))
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(std.Stderr, "issuer: %v\nRun 'issuer --help' for usage.\n", err)
		return ExitUsage
	}
	inv.args = pos
	inv.log = newLogger(std.Stderr, inv.cfg.LogFormat)
	err = inv.dispatch(ctx)
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(std.Stderr, "issuer: %v\nRun 'issuer --help' for usage.\n", err)
		return ExitUsage
	default:
		fmt.Fprintf(std.Stderr, "issuer: %v\n", err)
		return ExitFailure
	}
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func (inv *invocation) dispatch(ctx context.Context) error {
	if len(inv.args) == 0 {
		return inv.serve(ctx)
	}
	cmd, rest := inv.args[0], inv.args[1:]
	inv.args = rest
	switch cmd {
	case "serve":
		if len(rest) > 0 {
			return usagef("serve takes no arguments, got %q", rest)
		}
		return inv.serve(ctx)
	case "user":
		return inv.user(ctx)
	case "group":
		return inv.group(ctx)
	case "keys":
		return inv.keys(ctx)
	case "client":
		return inv.client(ctx)
	case "events":
		return inv.events(ctx)
	case "backup":
		return inv.backup(ctx)
	case "doctor":
		return inv.doctor(ctx)
	case "store":
		return inv.store(ctx)
	case "help":
		fmt.Fprint(inv.io.Stdout, helpText(rest, flagSet(&config.Config{}, new(bool), new(copyFlags), new(groupFlag), new(string), new(clientFlags))))
		return nil
	}
	return usagef("unknown command %q", cmd)
}

func helpText(pos []string, fs *flag.FlagSet) string {
	var b strings.Builder
	topic := ""
	if len(pos) > 0 {
		topic = pos[0]
	}
	switch topic {
	case "user":
		b.WriteString(`Usage: issuer user COMMAND [flags]

Commands:
  add NAME [--group G] create a user; the password is the first line of stdin;
                       --group (repeatable, or a comma list) puts them in groups
  disable NAME         disable a user and end their sessions
  enable NAME          enable a disabled user
  set-password NAME    set a new password (first line of stdin) and end every session
  reset-factors NAME   remove the user's authenticator app, passkeys and recovery codes
                       (they lost them all); sessions stay
  delete NAME          delete a user; the name stays reserved forever
  list                 list users
  link NAME --idp P --subject SUB
                       link the account SUB at the --idp provider P (configured
                       with --idp or CANOPY_ISSUER_IDP) to the user: they then
                       sign in there, even with sign-up through P closed
  unlink NAME --idp P  remove the user's link to provider P

`)
	case "group":
		b.WriteString(`Usage: issuer group COMMAND [flags]

Commands:
  add USER GROUP       put a user in a group (a-z, 0-9, '-', '_'; at most 32 characters)
  remove USER GROUP    take a user out of a group
  list [USER]          every membership, or one user's groups

Groups travel in the access token's "groups" claim from the user's next refresh;
relying services check them (relying --require-group, ssohttp.RequireGroup).

`)
	case "client":
		b.WriteString(`Usage: issuer client COMMAND [flags]

Commands:
  add NAME --redirect-uri URI [--redirect-uri URI…] [--public] [--backchannel-logout-uri URI]
      [--post-logout-redirect-uri URI…] [--id-token-alg RS256|ES256|EdDSA] [--require-group G…]
                       register an OpenID Connect client; prints {"client_id":…,"client_secret":…}
                       (the secret is shown once and stored hashed; a --public client has none)
  list                 list clients
  remove NAME|ID       remove a client; its codes and access tokens stop working at once
  rotate-secret NAME|ID
                       replace a confidential client's secret; prints the new one

Redirect URIs are matched exactly: absolute https URLs (http only on localhost, *.localhost or a
loopback address), without a fragment.

`)
	case "keys":
		b.WriteString(`Usage: issuer keys COMMAND [flags]

Commands:
  list                 list signing keys and their states
  rotate [--force]     in every algorithm (EdDSA, ES256, RS256): promote the next key to active,
                       retire the active one, create a new next key
  revoke KID           remove a key from the published set at once (a stolen key); a fresh key
                       of the same algorithm takes its place

Each algorithm has its own active key: --alg's signs the access cookie's token, the others
sign ID tokens for OpenID Connect clients (RS256 by default).

How long a next key waits and a retired key stays comes from the --access-ttl and
--jwks-max-age that the serving instances recorded in the key directory (the
largest ever used); the flags given to these commands can only lengthen it.

`)
	case "store":
		b.WriteString(`Usage: issuer store copy --from SQLITE_FILE --to postgres://… [flags]

Commands:
  copy                 copy users, sessions, refresh tokens, server secrets and events from a
                       SQLite file into an empty PostgreSQL database (created schema and all),
                       in one transaction, then print the row counts of both; refuses a
                       target that holds users, sessions or events. Stop the issuers first.

`)
	default:
		b.WriteString(`Usage: issuer [serve] [flags]
       issuer user add|disable|enable|set-password|reset-factors|delete NAME [flags]
       issuer user list [flags]
       issuer group add|remove USER GROUP [flags]
       issuer group list [USER] [flags]
       issuer keys list|rotate|revoke [KID] [flags]
       issuer client add NAME --redirect-uri URI [flags]   an OpenID Connect client
       issuer client list|remove|rotate-secret [NAME] [flags]
       issuer store copy --from SQLITE_FILE --to postgres://… [flags]
       issuer events [USERNAME] [flags]      the audit trail, newest first
       issuer backup FILE [flags]            a consistent online copy of the SQLite database
       issuer doctor [flags]                 check a configuration before deployment

Canopy's issuer: sign-up, login, logout and the account page at the apex domain,
and the signed access tokens every service under it verifies locally.

`)
	}
	b.WriteString("Flags (each also read from CANOPY_ISSUER_<FLAG>, e.g. CANOPY_ISSUER_ACCESS_TTL; flags win):\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "  --%-17s %s%s\n", f.Name, f.Usage, def)
	})
	b.WriteString("\nExit codes: 0 ok, 1 failure, 2 usage.\n")
	return b.String()
}

// readPassword reads the first line of stdin, newline stripped.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("no password on stdin")
	}
	var line []byte
	buf := make([]byte, 1)
	for len(line) <= 4096 {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line = append(line, buf[0])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading password from stdin: %w", err)
		}
	}
	pw := strings.TrimSuffix(string(line), "\r")
	if pw == "" {
		return "", errors.New("no password on stdin: give it as the first line, e.g. printf '%s\\n' \"$PW\" | issuer user add NAME")
	}
	return pw, nil
}
