// Command ztota is the zero-trust OTA update framework: server, device
// agent, certification client and operator CLI in one binary.
package main

import (
	"context"
	"os"

	"github.com/ztota/ztota/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
