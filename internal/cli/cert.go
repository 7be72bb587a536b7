package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/atomicfile"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certclient"
	"github.com/ztota/ztota/internal/certd"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/translog"
	"github.com/ztota/ztota/internal/verifystate"
	"github.com/ztota/ztota/internal/vulnref"
)

func certdCmd(g *globals) *cobra.Command {
	var cfg certd.Config
	var listen, policyFile string
	c := &cobra.Command{
		Use:   "certd --data DIR --osv PATH [--osv PATH...] [--listen ADDR]",
		Short: "Run the software certification service",
		Long: `Run the software certification service: an independent verifier that
inspects submitted artifacts against OSV vulnerability data, issues signed
certificates and rejections, keeps a signed revocation list and a
transparency log, and re-inspects certified artifacts when a source changes.

--osv takes an osv.dev all.zip file, a directory of OSV JSON records, or an
https URL of an all.zip (polled with ETag); a plain-http URL is accepted only
with the snapshot's digest pinned: http://host/all.zip#sha256=<hex>. On first start certd creates
its trust root and keys under DATA/keys (move DATA/keys/offline away) and an
API token in DATA/admin.token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			if policyFile != "" {
				b, err := os.ReadFile(policyFile)
				if err != nil {
					return err
				}
				cfg.Policy = b
			}
			cfg.Logger = g.logger()
			if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" && !cfg.InsecureHTTP {
				return certd.ErrNoTLS
			}
			s, err := certd.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Serve(ctx, listen, func(addr string) {
				cfg.Logger.Info("certification service listening", "addr", addr, "data", cfg.DataDir,
					"token_file", filepath.Join(cfg.DataDir, "admin.token"))
			})
		},
	}
	c.Flags().StringVar(&cfg.DataDir, "data", "", "data directory")
	c.Flags().StringArrayVar(&cfg.OSV, "osv", nil, "vulnerability source: all.zip, directory or URL (repeatable)")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "address to listen on")
	c.Flags().StringVar(&policyFile, "policy", "", "policy document (default DATA/policy.json or the built-in policy)")
	c.Flags().StringVar(&cfg.Origin, "origin", "", "transparency log origin (default: the one the certifier root pins)")
	c.Flags().DurationVar(&cfg.WatchInterval, "watch", certd.DefaultWatchInterval, "how often to check the sources")
	c.Flags().DurationVar(&cfg.RevocationTTL, "revocation-ttl", certd.DefaultRevocationTTL, "validity of each revocation list")
	c.Flags().StringVar(&cfg.TLSCertFile, "tls-cert", "", "TLS certificate (PEM)")
	c.Flags().StringVar(&cfg.TLSKeyFile, "tls-key", "", "TLS key (PEM)")
	c.Flags().BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "serve plain HTTP without a certificate (trusted networks and tests only)")
	c.MarkFlagRequired("data")
	return c
}

type certFlags struct {
	server, token, tokenFile, ca string
	json, insecure               bool
}

func (f *certFlags) add(cmd *cobra.Command, write bool) {
	cmd.Flags().StringVar(&f.server, "certd", "https://127.0.0.1:8090", "certification service URL")
	cmd.Flags().StringVar(&f.ca, "ca", "", "PEM CA pinned for the service's certificate (or $ZTOTA_CERTD_CA)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
	cmd.Flags().BoolVar(&f.insecure, "insecure-http", false, "allow a plain http:// --certd (or ZTOTA_INSECURE_HTTP=1)")
	if write {
		cmd.Flags().StringVar(&f.token, "token", "", "API token (or $ZTOTA_CERT_TOKEN)")
		cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the API token (certd writes DATA/admin.token)")
	}
}

func (f *certFlags) client(write bool) (*certclient.Client, error) {
	tok, err := tokenFrom(f.token, "ZTOTA_CERT_TOKEN", f.tokenFile)
	if err != nil {
		return nil, err
	}
	if write && tok == "" {
		return nil, errors.New("an API token is required: pass --token, --token-file or set ZTOTA_CERT_TOKEN (certd writes DATA/admin.token)")
	}
	tr, err := serverTransport("--certd", f.server, f.insecure, f.ca, "ZTOTA_CERTD_CA")
	if err != nil {
		return nil, err
	}
	c := certclient.New(f.server, tok)
	c.HTTP.Transport = tr
	return c, nil
}

func certCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "cert", Short: "Talk to the certification service and verify its certificates"}
	c.AddCommand(certSubmitCmd(g), certShowCmd(g), certListCmd(g), verifyCmd(g), certFetchCmd(g),
		certDBCmd(g), certStatusCmd(g), certEventsCmd(g), certKeysCmd(g))
	return c
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printSubmission(w io.Writer, s *certclient.Submission) {
	fmt.Fprintf(w, "artifact   sha256:%s\nstate      %s\n", s.Artifact, s.State)
	if s.Result.Digest != "" {
		fmt.Fprintf(w, "result     %s %s (verdict %s, log index %d)\ndb         %s\n", s.Result.Kind, s.Result.Digest,
			s.Result.Verdict, s.Result.LogIndex, s.Result.DBID)
		if !s.Result.ValidUntil.IsZero() {
			fmt.Fprintf(w, "valid      until %s\n", s.Result.ValidUntil.Format(time.RFC3339))
		}
	}
	if len(s.Findings) > 0 {
		fmt.Fprintf(w, "findings   %d\n", len(s.Findings))
		fs := make([]vulnref.Finding, 0, len(s.Findings))
		for _, raw := range s.Findings {
			var f vulnref.Finding
			if json.Unmarshal(raw, &f) == nil {
				fs = append(fs, f)
			}
		}
		printFindings(w, fs)
	}
	for _, raw := range s.Disagreements {
		var d vulnref.Disagreement
		if json.Unmarshal(raw, &d) == nil {
			fmt.Fprintf(w, "sbom       %s: %s %s@%s %s\n", d.Kind, d.Component.Ecosystem, d.Component.Name,
				d.Component.Version, d.SBOMVersion)
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note       %s\n", n)
	}
}

// rejectedError makes a rejection exit with status 3.
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return e.msg }
func (e *rejectedError) ExitCode() int { return 3 }

func certSubmitCmd(g *globals) *cobra.Command {
	var f certFlags
	var name, sbom, out string
	c := &cobra.Command{
		Use:   "submit ARTIFACT [--name NAME] [--sbom FILE] [--out BUNDLE]",
		Short: "Submit an artifact for certification (exit 3 when rejected)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(true)
			if err != nil {
				return err
			}
			s, err := cl.Submit(cmd.Context(), name, args[0], sbom)
			if err != nil {
				return err
			}
			if out != "" && s.Result.Digest != "" {
				b, err := cl.Bundle(cmd.Context(), s.Result.Digest)
				if err != nil {
					return err
				}
				if err := atomicfile.WriteFile(out, b, 0o644); err != nil {
					return err
				}
			}
			if f.json {
				printJSON(g.stdout, s)
			} else {
				printSubmission(g.stdout, s)
			}
			if s.Result.Verdict != attest.VerdictPass {
				return &rejectedError{msg: fmt.Sprintf("rejected: %v", s.Result.Advisories)}
			}
			return nil
		},
	}
	f.add(c, true)
	c.Flags().StringVar(&name, "name", "", "artifact name (default: the file name)")
	c.Flags().StringVar(&sbom, "sbom", "", "SBOM (CycloneDX or SPDX JSON) to cross-check")
	c.Flags().StringVar(&out, "out", "", "write the result's bundle (envelope + log receipt) here")
	return c
}

var hexRE = regexp.MustCompile(`^(sha256:)?[0-9a-f]{64}$`)

// artifactArg turns a sha256, sha256:hex or a file path into a hex digest.
func artifactArg(arg string) (string, error) {
	if hexRE.MatchString(arg) {
		return strings.TrimPrefix(arg, "sha256:"), nil
	}
	return fileSHA256(arg)
}

func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s is neither a sha256 nor a readable file: %w", path, err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func certShowCmd(g *globals) *cobra.Command {
	var f certFlags
	c := &cobra.Command{
		Use:   "show ARTIFACT-FILE|SHA256",
		Short: "Show an artifact's certification state and findings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sha, err := artifactArg(args[0])
			if err != nil {
				return err
			}
			cl, err := f.client(false)
			if err != nil {
				return err
			}
			s, err := cl.Artifact(cmd.Context(), sha)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(g.stdout, s)
			}
			printSubmission(g.stdout, s)
			return nil
		},
	}
	f.add(c, false)
	return c
}

func certListCmd(g *globals) *cobra.Command {
	var f certFlags
	var state string
	c := &cobra.Command{
		Use:   "list [--state certified|rejected|revoked]",
		Short: "List inspected artifacts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(false)
			if err != nil {
				return err
			}
			list, err := cl.List(cmd.Context(), state)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(g.stdout, list)
			}
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHA256\tNAME\tSTATE\tUPDATED")
			for _, a := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.SHA256[:16], a.Name, a.State, a.Updated.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f.add(c, false)
	c.Flags().StringVar(&state, "state", "", "only artifacts in this state")
	return c
}

// certBundle is what `cert submit --out` and `cert fetch` write.
type certBundle struct {
	Envelope json.RawMessage   `json:"envelope"`
	Kind     string            `json:"kind"`
	Receipt  *translog.Receipt `json:"receipt"`
}

func verifyCmd(g *globals) *cobra.Command {
	var rootFile, artifact, revocations, stateFile, logURL, logCA string
	var requireLog bool
	var minRevocations int64
	c := &cobra.Command{
		Use:   "verify CERT --root ROOT --artifact FILE [--revocations LIST] [--require-log] [--state FILE]",
		Short: "Verify a certificate offline",
		Long: `Verify a certificate offline: its signature under the certifier's root, that
its subject is the artifact's sha256, the transparency-log receipt when CERT
is a bundle (written by 'cert submit --out' or 'cert fetch') under the log
origin the root pins, and that the given signed revocation list is valid and
does not revoke it.

--state FILE records the newest revocation list and log checkpoint verified,
and refuses anything older: a revocation list of a lower version (even if
unexpired), a checkpoint not proved consistent with the recorded one. Without
a list, the recorded one is still checked. A receipt under another tree than
the recorded one needs a consistency proof, fetched from --log-url (the
certification service's URL; the proof is verified, the service need not be
trusted) — or fetch a fresh bundle. The file only moves forward, and is
written atomically.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			rootData, err := os.ReadFile(rootFile)
			if err != nil {
				return fmt.Errorf("--root: %w", err)
			}
			root, err := certroot.Trust(rootData)
			if err != nil {
				return fmt.Errorf("--root: %w", err)
			}
			o := certverify.Options{Root: root, Now: time.Now(), RequireReceipt: requireLog}
			env := data
			var b certBundle
			if json.Unmarshal(data, &b) == nil && len(b.Envelope) > 0 {
				env, o.Receipt, o.Kind = b.Envelope, b.Receipt, b.Kind
			}
			if artifact == "" {
				return errors.New("--artifact FILE (or its sha256) is required: a certificate is only meaningful for its subject")
			}
			if o.ArtifactSHA256, err = artifactArg(artifact); err != nil {
				return err
			}
			if revocations != "" {
				if o.Revocations, err = os.ReadFile(revocations); err != nil {
					return err
				}
			}
			o.MinRevocationsVersion = minRevocations
			if logURL != "" {
				tr, err := caTransport(logCA, "ZTOTA_CERTD_CA")
				if err != nil {
					return err
				}
				o.Prover = logProver(cmd.Context(), root, logURL, &http.Client{Transport: tr, Timeout: translog.DefaultClientTimeout})
			}
			var rep *certverify.Report
			if stateFile == "" {
				if rep, err = certverify.Verify(env, o); err != nil {
					return err
				}
			} else {
				err := verifystate.Update(stateFile, func(st *verifystate.State) error {
					st.Apply(&o)
					var verr error
					rep, verr = certverify.Verify(env, o)
					if err := st.Advance(rep); err != nil {
						return errors.Join(verr, err)
					}
					return verr
				})
				if err != nil {
					return err
				}
			}
			r := rep.Certificate.Result
			fmt.Fprintf(g.stdout, "OK  %s certificate %s\n    artifact sha256:%s (%s)\n    db %s, policy %s, verifier %s %s\n    valid until %s\n",
				r.Verdict, rep.Certificate.Digest, o.ArtifactSHA256, r.Artifact.Name, r.DB.ID, r.Policy.Digest,
				r.Verifier.ID, r.Verifier.Version, r.ValidUntil.Format(time.RFC3339))
			if rep.Checkpoint != nil {
				fmt.Fprintf(g.stdout, "    in log %s at index %d (checkpoint size %d)\n", rep.Checkpoint.Origin, o.Receipt.Index, rep.Checkpoint.Size)
			} else {
				fmt.Fprintln(g.stdout, "    log inclusion NOT checked (no receipt)")
			}
			if rep.Revocations != nil {
				fmt.Fprintf(g.stdout, "    not revoked in list version %d (expires %s)\n", rep.Revocations.Version,
					rep.Revocations.Expires.Format(time.RFC3339))
			} else if o.PrevRevocations != nil {
				fmt.Fprintf(g.stdout, "    not revoked in the recorded list version %d (no newer list given)\n", o.PrevRevocations.Version)
			} else {
				fmt.Fprintln(g.stdout, "    revocation NOT checked (no list)")
			}
			return nil
		},
	}
	c.Flags().StringVar(&rootFile, "root", "", "the certifier's trusted root.json")
	c.Flags().StringVar(&artifact, "artifact", "", "the artifact file (or its sha256)")
	c.Flags().StringVar(&revocations, "revocations", "", "a signed revocation list")
	c.Flags().BoolVar(&requireLog, "require-log", false, "fail unless CERT is a bundle with a valid log receipt")
	c.Flags().StringVar(&stateFile, "state", "", "verifier state file: records the newest revocation list and checkpoint, refuses older ones")
	c.Flags().Int64Var(&minRevocations, "min-revocations-version", 0, "refuse revocation lists below this version")
	c.Flags().StringVar(&logURL, "log-url", "", "the certification service's URL, to fetch log consistency proofs")
	c.Flags().StringVar(&logCA, "ca", "", "PEM CA pinned for --log-url's certificate (or $ZTOTA_CERTD_CA)")
	c.MarkFlagRequired("root")
	return c
}

// logProver fetches consistency proofs from the log of the certification
// service at base (its /v1/log).
func logProver(ctx context.Context, root *certroot.Root, base string, hc *http.Client) certverify.ConsistencyProver {
	return func(oldSize, newSize int64) (tlog.TreeProof, error) {
		key, err := root.PinnedLogVerifierKey()
		if err != nil {
			return nil, err
		}
		v, err := note.NewVerifier(key)
		if err != nil {
			return nil, err
		}
		c := &translog.Client{BaseURL: strings.TrimSuffix(base, "/") + "/v1/log", Verifier: v, HTTP: hc}
		return c.ConsistencyProof(ctx, oldSize, newSize)
	}
}

func certFetchCmd(g *globals) *cobra.Command {
	var f certFlags
	var dir string
	c := &cobra.Command{
		Use:   "fetch ARTIFACT-FILE|SHA256 --out DIR",
		Short: "Download an artifact's current result bundle, the revocation list and the root for offline verification",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sha, err := artifactArg(args[0])
			if err != nil {
				return err
			}
			cl, err := f.client(false)
			if err != nil {
				return err
			}
			s, err := cl.Artifact(cmd.Context(), sha)
			if err != nil {
				return err
			}
			if s.Result.Digest == "" {
				return fmt.Errorf("artifact %s has no result", sha)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			files := map[string]func() ([]byte, error){
				"bundle.json":      func() ([]byte, error) { return cl.Bundle(cmd.Context(), s.Result.Digest) },
				"revocations.json": func() ([]byte, error) { return cl.Revocations(cmd.Context()) },
				"root.json":        func() ([]byte, error) { return cl.Root(cmd.Context()) },
			}
			for name, get := range files {
				b, err := get()
				if err != nil {
					return err
				}
				if err := atomicfile.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stdout, "wrote bundle.json, revocations.json, root.json to %s (state %s)\n", dir, s.State)
			fmt.Fprintln(g.stdout, "note: root.json came from the service; pin the root you received out of band instead")
			return nil
		},
	}
	f.add(c, false)
	c.Flags().StringVar(&dir, "out", ".", "directory to write into")
	return c
}

// rawCmd is a command that makes one API call and prints its JSON answer.
func rawCmd(g *globals, use, short string, args cobra.PositionalArgs, write bool,
	call func(cmd *cobra.Command, cl *certclient.Client, args []string) ([]byte, error)) *cobra.Command {
	var f certFlags
	c := &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(write)
			if err != nil {
				return err
			}
			b, err := call(cmd, cl, args)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
	f.add(c, write)
	return c
}

func certDBCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "db", Short: "Update the certification service's vulnerability database"}
	var source int
	load := rawCmd(g, "load ALL.ZIP [--source N]",
		"Upload an OSV all.zip as the new snapshot of source N (re-inspects what it affects)", cobra.ExactArgs(1), true,
		func(cmd *cobra.Command, cl *certclient.Client, args []string) ([]byte, error) {
			return cl.UploadDB(cmd.Context(), source, args[0])
		})
	load.Flags().IntVar(&source, "source", 0, "index of the source to replace (see cert status)")
	poll := rawCmd(g, "poll", "Make the service check its sources now", cobra.NoArgs, true,
		func(cmd *cobra.Command, cl *certclient.Client, _ []string) ([]byte, error) {
			return cl.PollDB(cmd.Context())
		})
	c.AddCommand(load, poll)
	return c
}

func certStatusCmd(g *globals) *cobra.Command {
	return rawCmd(g, "status", "Show the service's verifier, DB snapshot, policy and log", cobra.NoArgs, false,
		func(cmd *cobra.Command, cl *certclient.Client, _ []string) ([]byte, error) {
			return cl.Status(cmd.Context())
		})
}

func certEventsCmd(g *globals) *cobra.Command {
	var f certFlags
	var after int64
	var follow bool
	c := &cobra.Command{
		Use:   "events [--after N] [--follow]",
		Short: "Print the service's event feed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(false)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			for {
				wait := time.Duration(0)
				if follow {
					wait = 30 * time.Second
				}
				evs, err := cl.Events(ctx, after, wait)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				for _, e := range evs {
					fmt.Fprintf(g.stdout, "%d %s %s %s %s\n", e.Seq, e.Time.Format(time.RFC3339), e.Kind, e.Artifact, e.Data)
					after = e.Seq
				}
				if !follow {
					return nil
				}
			}
		},
	}
	f.add(c, false)
	c.Flags().Int64Var(&after, "after", 0, "print events after this sequence number")
	c.Flags().BoolVar(&follow, "follow", false, "keep waiting for new events")
	return c
}

func certKeysCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "The certifier's trust root and keys"}
	var dir, alg, origin string
	var n, threshold int
	initC := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Create a certifier trust root with offline root keys and online role keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := certroot.Init(dir, certroot.Options{Alg: alg, RootKeys: n, RootThreshold: threshold, Now: time.Now(), LogOrigin: origin}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "certifier root version 1 written to %s (offline root keys in %s)\n",
				filepath.Join(dir, "root.json"), filepath.Join(dir, "offline"))
			return nil
		},
	}
	initC.Flags().StringVar(&dir, "dir", "", "key directory (certd uses DATA/keys)")
	initC.Flags().StringVar(&alg, "alg", "ed25519", "key algorithm for root and certify/revoke keys (ed25519 or ecdsa-p256)")
	initC.Flags().IntVar(&n, "root-keys", 1, "number of root keys")
	initC.Flags().IntVar(&threshold, "threshold", 1, "root signature threshold")
	initC.Flags().StringVar(&origin, "log-origin", certroot.DefaultLogOrigin, "the transparency log's origin, pinned in the root (certd --origin must match)")
	initC.MarkFlagRequired("dir")
	c.AddCommand(initC, certRotateCmd(g))
	return c
}

func certRotateCmd(g *globals) *cobra.Command {
	var dir, alg, origin string
	var rootKeys, threshold int
	var roles []string
	c := &cobra.Command{
		Use:   "rotate --dir DIR [--root-keys N] [--threshold T] [--role certify|revoke|log ...]",
		Short: "Make the next certifier root version: new root keys and/or new online role keys",
		Long: `Make the next certifier root version, signed by a threshold of the current
root keys and a threshold of the new ones. Restart certd to use new online
keys; clients follow the chain at /v1/roots/N.root.json. A root made before
the log origin was pinned gets it in the next version (--log-origin, default
` + certroot.DefaultLogOrigin + `); verifiers refuse log receipts under a root
without it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := certroot.Rotate(dir, certroot.RotateOptions{Alg: alg, RootKeys: rootKeys,
				RootThreshold: threshold, Roles: roles, Now: time.Now(), LogOrigin: origin})
			if err != nil {
				return err
			}
			r, err := certroot.Parse(data)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "certifier root version %d written to %s\n", r.Version(), filepath.Join(dir, "root.json"))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "key directory (certd uses DATA/keys)")
	c.Flags().StringVar(&alg, "alg", "ed25519", "algorithm of new keys")
	c.Flags().IntVar(&rootKeys, "root-keys", 0, "replace the root keys with this many new ones (0 keeps them)")
	c.Flags().IntVar(&threshold, "threshold", 0, "the next root threshold (0 keeps it)")
	c.Flags().StringArrayVar(&roles, "role", nil, "online role that gets a new key (repeatable)")
	c.Flags().StringVar(&origin, "log-origin", "", "pin this log origin in a root that has none yet (default "+certroot.DefaultLogOrigin+"); a pinned origin cannot change")
	c.MarkFlagRequired("dir")
	return c
}
