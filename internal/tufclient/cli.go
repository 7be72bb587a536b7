package tufclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztota/ztota/internal/atomicfile"
	"github.com/ztota/ztota/internal/boundedfile"
)

// fakeTimeEnv is the variable the faketime wrapper sets for the child.
const fakeTimeEnv = "FAKETIME"

// cliEnv is what the command takes from its process.
type cliEnv struct {
	getenv func(string) string
	now    func() time.Time
	client *http.Client
}

// Command returns the `tuf-client` command of the TUF conformance
// protocol. Every failure is returned as an *ExitError with Code 1.
func Command() *cobra.Command {
	return newCommand(cliEnv{
		getenv: os.Getenv,
		now:    time.Now,
		client: &http.Client{Timeout: DefaultHTTPTimeout},
	})
}

// Main runs the tuf-client command with args (without the program name)
// and returns the process exit status: 0 on success, 1 on any failure.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := Command()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "tuf-client:", err)
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return 1
}

// fail wraps err as the protocol's failure.
func fail(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: 1, Err: err}
}

func newCommand(env cliEnv) *cobra.Command {
	var (
		metadataDir   string
		metadataURL   string
		targetNames   []string
		targetDir     string
		targetBaseURL string
	)
	root := &cobra.Command{
		Use:   "tuf-client",
		Short: "TUF client for the TUF conformance test suite",
		Long: `tuf-client implements the client-under-test protocol of the TUF conformance
suite (init, refresh, download). It exits 0 on success and 1 on any failure.
FAKETIME (as set by the faketime wrapper) moves the clock used for expiry.`,
		Args:         cobra.ArbitraryArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fail(fmt.Errorf("%w: unknown command %q; use init, refresh or download", ErrUsage, args[0]))
			}
			return fail(fmt.Errorf("%w: give a command: init, refresh or download", ErrUsage))
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fail(fmt.Errorf("%w: %v", ErrUsage, err))
	})
	pf := root.PersistentFlags()
	pf.StringVar(&metadataDir, "metadata-dir", "", "directory of trusted local metadata (required)")
	pf.StringVar(&metadataURL, "metadata-url", "", "URL of the repository's metadata")
	pf.StringArrayVar(&targetNames, "target-name", nil, "target path to download (repeatable)")
	pf.StringVar(&targetDir, "target-dir", "", "directory for downloaded targets")
	pf.StringVar(&targetBaseURL, "target-base-url", "", "URL of the repository's targets")

	options := func() (Options, error) {
		if metadataDir == "" {
			return Options{}, fmt.Errorf("%w: --metadata-dir is required", ErrUsage)
		}
		if metadataURL == "" {
			return Options{}, fmt.Errorf("%w: --metadata-url is required", ErrUsage)
		}
		ref, err := ParseFakeTime(env.getenv(fakeTimeEnv), env.now())
		if err != nil {
			return Options{}, err
		}
		return Options{
			MetadataURL: metadataURL,
			MetadataDir: metadataDir,
			HTTPClient:  env.client,
			RefTime:     ref,
		}, nil
	}

	root.AddCommand(&cobra.Command{
		Use:          "init ROOT_FILE",
		Short:        "Trust ROOT_FILE as the initial root (no network)",
		Args:         cobra.ArbitraryArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if metadataDir == "" || len(args) != 1 {
				return fail(fmt.Errorf("%w: tuf-client --metadata-dir DIR init ROOT_FILE", ErrUsage))
			}
			return fail(initRoot(metadataDir, args[0]))
		},
	})
	root.AddCommand(&cobra.Command{
		Use:          "refresh",
		Short:        "Update the trusted top-level metadata from the repository",
		Args:         cobra.ArbitraryArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return fail(fmt.Errorf("%w: refresh takes no arguments", ErrUsage))
			}
			o, err := options()
			if err != nil {
				return fail(err)
			}
			up, err := NewUpdater(cmd.Context(), o)
			if err != nil {
				return fail(err)
			}
			if err := up.Refresh(); err != nil {
				return fail(fmt.Errorf("refresh from %s: %w", o.MetadataURL, err))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "refreshed metadata in", o.MetadataDir)
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:          "download",
		Short:        "Refresh, then download and verify each --target-name into --target-dir",
		Args:         cobra.ArbitraryArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return fail(fmt.Errorf("%w: download takes no arguments", ErrUsage))
			}
			if len(targetNames) == 0 || targetDir == "" || targetBaseURL == "" {
				return fail(fmt.Errorf("%w: download needs --target-name, --target-dir and --target-base-url", ErrUsage))
			}
			o, err := options()
			if err != nil {
				return fail(err)
			}
			o.TargetsDir = targetDir
			o.TargetsURL = targetBaseURL
			return fail(download(cmd.Context(), o, targetNames, cmd.OutOrStdout()))
		},
	})
	return root
}

// initRoot copies the root file into dir as root.json, unchecked, as the
// protocol asks; the first refresh verifies it.
func initRoot(dir, rootFile string) error {
	data, err := boundedfile.Read(rootFile, DefaultLimits().RootMaxLength)
	if err != nil {
		return fmt.Errorf("read trusted root: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create metadata directory: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "root.json"), data, 0o600); err != nil {
		return fmt.Errorf("write trusted root: %w", err)
	}
	return nil
}

// download refreshes once, then fetches each target unless a verified copy
// is already in the target directory.
func download(ctx context.Context, o Options, names []string, out io.Writer) error {
	up, err := NewUpdater(ctx, o)
	if err != nil {
		return err
	}
	if err := up.Refresh(); err != nil {
		return fmt.Errorf("refresh from %s: %w", o.MetadataURL, err)
	}
	for _, name := range names {
		info, err := up.GetTargetInfo(name)
		if err != nil {
			return fmt.Errorf("target %q: %w", name, err)
		}
		path, _, err := up.FindCachedTarget(info, "")
		if err != nil {
			return fmt.Errorf("target %q: look for a cached copy: %w", name, err)
		}
		if path != "" {
			fmt.Fprintf(out, "target %s already present at %s\n", name, path)
			continue
		}
		path, _, err = up.DownloadTarget(info, "", "")
		if err != nil {
			return fmt.Errorf("target %q: download: %w", name, err)
		}
		fmt.Fprintf(out, "downloaded target %s to %s\n", name, path)
	}
	return nil
}
