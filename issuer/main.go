// Command issuer is Canopy's identity issuer: it signs users in at the apex
// domain and issues the access tokens that every service under it verifies.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/canopy-sso/canopy/issuer/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.LookupEnv, cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
