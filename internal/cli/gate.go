package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/vulnref"
)

// maxBundleFile bounds a certificate bundle file read by the CLI: an
// envelope (attest.MaxEnvelopeSize) and its receipt.
const maxBundleFile = attest.MaxEnvelopeSize + 64<<10

// readBounded reads a file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// loadCertifierRoot reads and checks the certifier's root.json (as 'ztota
// cert fetch' writes it): self-signed by a threshold of its root keys.
func loadCertifierRoot(path string) (*certroot.Root, error) {
	b, err := readBounded(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("--certifier-root: %w", err)
	}
	r, err := certroot.Trust(b)
	if err != nil {
		return nil, fmt.Errorf("--certifier-root %s: %w", path, err)
	}
	if _, err := r.PinnedLogVerifierKey(); err != nil {
		return nil, fmt.Errorf("--certifier-root %s: %w (rotate the certifier root with 'ztota cert keys rotate --log-origin ...')", path, err)
	}
	return r, nil
}

// gateFlags are the release command's certification flags.
type gateFlags struct {
	certificate, certd, ca, tokenFile, sbom string
	insecure                                bool
}

func (f *gateFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.certificate, "certificate", "", "the certifier's bundle for the artifact ('ztota cert submit --out'), uploaded with the release")
	c.Flags().StringVar(&f.certd, "certd", "", "certification service URL: submit the artifact and upload the certificate with the release")
	c.Flags().StringVar(&f.ca, "certd-ca", "", "PEM CA pinned for --certd's certificate (or $ZTOTA_CERTD_CA)")
	c.Flags().StringVar(&f.tokenFile, "certd-token-file", "", "file holding the certification service's API token (or $ZTOTA_CERT_TOKEN)")
	c.Flags().StringVar(&f.sbom, "sbom", "", "SBOM to submit with the artifact (with --certd)")
	c.Flags().BoolVar(&f.insecure, "certd-insecure-http", false, "allow a plain http:// --certd (or ZTOTA_INSECURE_HTTP=1)")
}

// bundle returns the certifier's bundle for the artifact, or nil when no
// certification flag is given. A rejection is a *rejectedError (exit 3)
// after the certifier's findings are printed.
func (f *gateFlags) bundle(ctx context.Context, g *globals, artifact, name string) ([]byte, error) {
	switch {
	case f.certificate != "" && f.certd != "":
		return nil, errors.New("give either --certificate BUNDLE or --certd URL, not both")
	case f.certificate != "":
		return bundleFile(g.stdout, f.certificate, artifact)
	case f.certd == "":
		return nil, nil
	}
	cf := certFlags{server: f.certd, tokenFile: f.tokenFile, ca: f.ca, insecure: f.insecure}
	cl, err := cf.client(true)
	if err != nil {
		return nil, fmt.Errorf("--certd: %w", err)
	}
	if name == "" {
		name = filepath.Base(artifact)
	}
	s, err := cl.Submit(ctx, name, artifact, f.sbom)
	if err != nil {
		return nil, fmt.Errorf("submitting %s to the certifier: %w", artifact, err)
	}
	if s.Result.Verdict != attest.VerdictPass {
		printSubmission(g.stdout, s)
		return nil, &rejectedError{msg: fmt.Sprintf("release refused: the certifier rejected %s (%s): %s", artifact, s.Result.Digest,
			strings.Join(s.Result.Advisories, ", "))}
	}
	b, err := cl.Bundle(ctx, s.Result.Digest)
	if err != nil {
		return nil, fmt.Errorf("fetching the certificate bundle: %w", err)
	}
	fmt.Fprintf(g.stdout, "certified by the certifier: %s (database %s)\n", s.Result.Digest, s.Result.DBID)
	return b, nil
}

// bundleFile reads a bundle written by 'ztota cert submit --out'. A
// rejection fails here, showing its findings; they are read without
// checking signatures (the server checks them; a rejection is refused
// either way).
func bundleFile(w io.Writer, path, artifact string) ([]byte, error) {
	data, err := readBounded(path, maxBundleFile)
	if err != nil {
		return nil, fmt.Errorf("--certificate: %w", err)
	}
	var b certBundle
	if err := strictjson.DecodeUnique(data, &b, 64); err != nil {
		return nil, fmt.Errorf("--certificate %s: not a certificate bundle (envelope, kind, receipt): %w", path, err)
	}
	if len(b.Envelope) == 0 || b.Receipt == nil {
		return nil, fmt.Errorf("--certificate %s: a bundle needs an envelope and a log receipt ('ztota cert submit --out' writes one)", path)
	}
	r, err := attest.ReadResult(b.Envelope)
	if err != nil {
		return nil, fmt.Errorf("--certificate %s: %w", path, err)
	}
	if r.Verdict != attest.VerdictPass || b.Kind == attest.KindRejection {
		fmt.Fprintf(w, "the certifier's %s of %s (verdict %s, database %s):\n", r.Kind, r.Artifact.Name, r.Verdict, r.DB.ID)
		printFindings(w, r.Findings)
		var ids []string
		for _, f := range r.Findings {
			ids = append(ids, f.ID)
		}
		return nil, &rejectedError{msg: fmt.Sprintf("release refused: %s is a %s of %s, not a certificate: %s", path, r.Kind, artifact,
			strings.Join(ids, ", "))}
	}
	return data, nil
}

// printFindings lists findings one a line ("!" blocking, "~" exempted),
// with the level (present or module-only) and the first symbols found.
func printFindings(w io.Writer, fs []vulnref.Finding) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, f := range fs {
		mark := " "
		switch {
		case f.Blocking:
			mark = "!"
		case f.Exempted:
			mark = "~"
		}
		fixed := f.Fixed
		if fixed == "" {
			fixed = "-"
		}
		level := f.Level
		if level == "" {
			level = "-"
		}
		syms := f.Symbols
		more := ""
		if len(syms) > 3 {
			syms, more = syms[:3], fmt.Sprintf(" +%d", len(f.Symbols)-3)
		}
		fmt.Fprintf(tw, "  %s %s\t%s@%s\tfixed %s\t%s\t%s\t%s%s\n", mark, f.ID, f.Package, f.Version, fixed, f.Severity,
			level, strings.Join(syms, " "), more)
	}
	tw.Flush()
}

func revocationsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "revocations", Short: "The certifier's revocation list on the OTA server"}
	var af apiFlags
	var from certFlags
	push := &cobra.Command{
		Use:   "push [LIST] [--from-certd URL]",
		Short: "Send a newer signed revocation list to the server (from a file or the certification service)",
		Long: `Send the certifier's signed revocation list to the OTA server, which keeps
it if it verifies under the server's pinned certifier root and is newer than
(or the same as) the one it holds: the version never goes down, an expired
list or one that drops a revocation is refused. The server serves the list
to devices and refuses deployments of revoked releases.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []byte
			var err error
			switch {
			case len(args) == 1 && cmd.Flags().Changed("from-certd"):
				return errors.New("give either LIST or --from-certd URL")
			case len(args) == 1:
				if list, err = readBounded(args[0], attest.MaxRevocationsSize); err != nil {
					return err
				}
			case cmd.Flags().Changed("from-certd"):
				cl, err := from.client(false)
				if err != nil {
					return err
				}
				if list, err = cl.Revocations(cmd.Context()); err != nil {
					return err
				}
			default:
				return errors.New("give the list file or --from-certd URL")
			}
			api, err := af.client()
			if err != nil {
				return err
			}
			a, err := api.PushRevocations(cmd.Context(), list)
			if err != nil {
				return err
			}
			what := "stored"
			if a.Unchanged {
				what = "already held"
			}
			fmt.Fprintf(g.stdout, "revocation list version %d %s (%d entries, expires %s)\n", a.Version, what, a.Entries,
				a.Expires.Format("2006-01-02T15:04:05Z07:00"))
			return nil
		},
	}
	af.add(push)
	push.Flags().StringVar(&from.server, "from-certd", "", "fetch the list from this certification service")
	push.Flags().StringVar(&from.ca, "certd-ca", "", "PEM CA pinned for --from-certd (or $ZTOTA_CERTD_CA)")
	var sf apiFlags
	show := &cobra.Command{
		Use: "show", Short: "Print the signed revocation list the server holds", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := sf.client()
			if err != nil {
				return err
			}
			b, err := api.Revocations(cmd.Context())
			if err != nil {
				return err
			}
			var v any
			if json.Unmarshal(b, &v) != nil {
				_, err = g.stdout.Write(b)
				return err
			}
			return printJSON(g.stdout, v)
		},
	}
	sf.add(show)
	c.AddCommand(push, show)
	return c
}
