// Command ztota is the zero-trust OTA update framework: server, device
// agent, certification client and operator CLI in one binary.
package main

import (
	"context"
	"os"

	"github.com/ztota/ztota/internal/cli"
	"github.com/ztota/ztota/internal/sandbox"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.HelperArg {
		sandbox.Main() // confines itself, then execs the module; never returns
	}
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
