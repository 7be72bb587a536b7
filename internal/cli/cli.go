// Package cli assembles the ztota command line: one cobra root with the
// subcommands of every role (server, agent, integrator and operator
// commands, the TUF conformance client and the demo).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/tufclient"
)

// ExitCoder is an error that carries a process exit status.
type ExitCoder interface{ ExitCode() int }

// Run executes the command line and returns the process exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ec ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" && ec.ExitCode() != 0 {
			fmt.Fprintln(stderr, "ztota:", msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(stderr, "ztota:", err)
	return 1
}

type globals struct {
	stdout, stderr io.Writer
	verbose        bool
}

func (g *globals) logger() *slog.Logger {
	lvl := slog.LevelInfo
	if g.verbose {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
}

// NewRoot builds the root command.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "ztota",
		Short:         "Zero-trust over-the-air updates for IoT fleets",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debug messages")
	root.AddCommand(
		keysCmd(g), serverCmd(g), agentCmd(g), releaseCmd(g), deployCmd(g),
		devicesCmd(g), tokenCmd(g), demoCmd(g), tufclient.Command(),
		certdCmd(g), certCmd(g), verifyCmd(g), revocationsCmd(g),
		repairsCmd(g), mitigationsCmd(g),
	)
	return root
}

// tokenFrom resolves an API token from the flag, else the environment
// variable env, else the file; "" when none of them is given.
func tokenFrom(flag, env, file string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// token resolves the OTA server's API token from the flag, $ZTOTA_TOKEN or
// a file.
func token(flag, file string) (string, error) {
	tok, err := tokenFrom(flag, "ZTOTA_TOKEN", file)
	if err == nil && tok == "" && file == "" {
		return "", errors.New("an API token is required: pass --token, --token-file or set ZTOTA_TOKEN (a new server writes its first admin token to DATA/admin.token)")
	}
	return tok, err
}

type apiFlags struct {
	server, token, tokenFile, ca string
	insecure                     bool
}

// client returns an API client for the flags, or an error that says how
// to pass a token.
func (a *apiFlags) client() (*apiclient.Client, error) {
	tok, err := token(a.token, a.tokenFile)
	if err != nil {
		return nil, err
	}
	tr, err := serverTransport("--server", a.server, a.insecure, a.ca, "ZTOTA_CA")
	if err != nil {
		return nil, err
	}
	c := apiclient.New(a.server, tok)
	c.HTTP.Transport = tr
	return c, nil
}

// serverTransport checks the URL a flag gives (https, or plain http when
// insecure or ZTOTA_INSECURE_HTTP=1 allows it) and returns a transport
// that trusts only the CA in caFile (or in the file $caEnv names).
func serverTransport(flag, url string, insecure bool, caFile, caEnv string) (*http.Transport, error) {
	if err := tlsutil.CheckURL(flag, url, insecure || os.Getenv("ZTOTA_INSECURE_HTTP") == "1"); err != nil {
		return nil, fmt.Errorf("%w (--insecure-http)", err)
	}
	return caTransport(caFile, caEnv)
}

// caTransport is an HTTP transport that trusts only the CA in file (or
// in the file $env names), or the system roots when neither is set.
func caTransport(file, env string) (*http.Transport, error) {
	if file == "" {
		file = os.Getenv(env)
	}
	tr, err := tlsutil.Transport(file)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	return tr, nil
}

func (a *apiFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.server, "server", "https://127.0.0.1:8080", "OTA server URL")
	cmd.Flags().StringVar(&a.ca, "ca", "", "PEM CA pinned for the server's certificate (or $ZTOTA_CA; e.g. online/tls/ca.pem)")
	cmd.Flags().StringVar(&a.token, "token", "", "API token (or $ZTOTA_TOKEN)")
	cmd.Flags().StringVar(&a.tokenFile, "token-file", "", "file holding the API token")
	cmd.Flags().BoolVar(&a.insecure, "insecure-http", false, "allow a plain http:// --server: the token and everything else cross the network readable (or ZTOTA_INSECURE_HTTP=1)")
}
