package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/boundedfile"
	"github.com/ztota/ztota/internal/demo"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/sandbox"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/tufrepo"
)

func keysCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "Make and rotate repository keys"}
	var o keyset.Options
	var out string
	initCmd := &cobra.Command{
		Use:   "init --out DIR",
		Short: "Make the image and director repository keys and initial signed roots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out DIR is required")
			}
			if err := keyset.Init(out, o); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "keys written to %s\n  offline/ (root and targets keys, TLS CA key): keep off the server\n  online/  (give to 'ztota server --keys'; devices pin online/image-root.json and online/director-root.json)\n  online/tls/ca.pem: the CA devices pin (server_ca) and clients pass with --ca; online/tls/server.pem, server.key: the server's certificate\n", out)
			return nil
		},
	}
	initCmd.Flags().StringVar(&out, "out", "", "directory to create")
	initCmd.Flags().StringVar(&o.Alg, "alg", "ed25519", "key algorithm: ed25519 or ecdsa-p256")
	initCmd.Flags().IntVar(&o.RootKeys, "root-keys", 1, "number of root keys per repository")
	initCmd.Flags().IntVar(&o.RootThreshold, "root-threshold", 1, "signatures needed on root metadata")
	initCmd.Flags().StringSliceVar(&o.TLSHosts, "tls-host", nil, "host names or addresses of the server certificate besides localhost, 127.0.0.1 and ::1 (repeatable)")
	var tlsDir string
	var tlsHosts []string
	tlsCmd := &cobra.Command{
		Use:   "tls --keys DIR [--tls-host NAME...]",
		Short: "Issue a new server TLS certificate (online/tls/server.pem) with the key set's CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tlsDir == "" {
				return fmt.Errorf("--keys DIR is required")
			}
			if err := keyset.IssueTLS(tlsDir, tlsHosts, time.Time{}); err != nil {
				return err
			}
			_, cert, key := keyset.TLSFiles(filepath.Join(tlsDir, keyset.OnlineDir))
			fmt.Fprintf(g.stdout, "server certificate %s and key %s written; restart the server with them\n", cert, key)
			return nil
		},
	}
	tlsCmd.Flags().StringVar(&tlsDir, "keys", "", "keys directory made by 'ztota keys init'")
	tlsCmd.Flags().StringSliceVar(&tlsHosts, "tls-host", nil, "host names or addresses besides localhost, 127.0.0.1 and ::1 (repeatable)")

	var ro keyset.RotateOptions
	var dir, role string
	var lost bool
	var af apiFlags
	rotate := &cobra.Command{
		Use:   "rotate --keys DIR --repo image|director [--role root|targets|snapshot|timestamp]",
		Short: "Replace a repository's root keys or one role's key with a new root version, and publish it",
		Long: `Replace a repository's root keys (--role root) or the key of one role with a
new root version signed by the current root keys. For root keys and the image
targets key, with a token (--token, --token-file or $ZTOTA_TOKEN) the new root
is published at once (as 'keys publish' does). A new online key (snapshot,
timestamp, director targets) must first be copied into the server's DATA/keys/;
then 'keys publish' sends the root.

--repo image --role targets replaces the integrator's offline targets key
(after a compromise): the new key is written to offline/image-targets.key, the
old one kept as offline/image-targets.key.retired-<version>. Publishing then
re-signs the current image targets with the new key (co-signed by the retired
one) from the copy of the last targets this keys directory signed, so every
published release stays listed, and only then sends the root. If the old
targets key is lost rather than leaked, --old-key-lost does it in two root
versions instead (the first lists both keys).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if lost {
				if ro.Repo != "image" || role != tufrepo.Targets || !af.hasToken() {
					return fmt.Errorf("--old-key-lost is for --repo image --role targets, with --server and a token")
				}
				api, err := af.client()
				if err != nil {
					return err
				}
				res, err := release.ReplaceLostTargetsKey(cmd.Context(), api, dir, ro.Alg)
				if err != nil {
					return err
				}
				printResign(g, res)
				fmt.Fprintf(g.stdout, "new image targets key: %s; the lost key is dropped from image root %s, published to %s\n",
					filepath.Join(dir, keyset.RoleKeyFile("image", tufrepo.Targets)), keyset.CurrentRootFile(dir, "image"), af.server)
				return nil
			}
			if role == "" || role == "root" {
				data, err = keyset.Rotate(dir, ro)
			} else {
				data, err = keyset.RotateRole(dir, ro.Repo, role, ro.Alg, time.Time{})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "new %s root written to %s\n", ro.Repo, keyset.CurrentRootFile(dir, ro.Repo))
			switch {
			case ro.Repo == "image" && role == tufrepo.Targets:
				fmt.Fprintf(g.stdout, "new image targets key: %s (offline: keep it off the server)\n", filepath.Join(dir, keyset.RoleKeyFile(ro.Repo, role)))
			case role != "" && role != "root":
				// An online key: the server must hold it before the root
				// that names it arrives, so this never publishes.
				fmt.Fprintf(g.stdout, "new %s %s key: %s\ncopy it into the server's DATA/keys/ under a new name ending in .key (e.g. new-%s-%s.key), then run 'ztota keys publish --keys %s --repo %s'\n",
					ro.Repo, role, filepath.Join(dir, keyset.RoleKeyFile(ro.Repo, role)), ro.Repo, role, dir, ro.Repo)
				return nil
			}
			if !af.hasToken() {
				fmt.Fprintf(g.stdout, "publish it with 'ztota keys publish --keys %s --repo %s'\n", dir, ro.Repo)
				return nil
			}
			api, err := af.client()
			if err != nil {
				return err
			}
			return publishRoot(cmd.Context(), g, api, dir, ro.Repo, data, af.server)
		},
	}
	rotate.Flags().StringVar(&dir, "keys", "", "keys directory")
	rotate.Flags().StringVar(&ro.Repo, "repo", "image", "image or director")
	rotate.Flags().StringVar(&role, "role", "root", "root, or the role to re-key: targets, snapshot or timestamp")
	rotate.Flags().IntVar(&ro.NewKeys, "root-keys", 1, "number of new root keys")
	rotate.Flags().IntVar(&ro.Threshold, "root-threshold", 1, "threshold of the new root")
	rotate.Flags().StringVar(&ro.Alg, "alg", "ed25519", "key algorithm")
	rotate.Flags().BoolVar(&lost, "old-key-lost", false, "(image targets) the old targets key is lost, not leaked: add the new key in one root version, re-sign, drop the old key in the next")
	af.add(rotate)
	var pdir, prepo string
	var pf apiFlags
	publish := &cobra.Command{
		Use:   "publish --keys DIR --repo image|director",
		Short: "Send the newest root of a repository (after 'keys rotate') to the server; for the image repository, re-sign its targets first if the new root needs it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(keyset.CurrentRootFile(pdir, prepo))
			if err != nil {
				return fmt.Errorf("%w: run 'ztota keys rotate' first", err)
			}
			api, err := pf.client()
			if err != nil {
				return err
			}
			return publishRoot(cmd.Context(), g, api, pdir, prepo, data, pf.server)
		},
	}
	publish.Flags().StringVar(&pdir, "keys", "", "keys directory")
	publish.Flags().StringVar(&prepo, "repo", "image", "image or director")
	pf.add(publish)
	c.AddCommand(initCmd, rotate, publish, tlsCmd)
	return c
}

func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
}

func serverCmd(g *globals) *cobra.Command {
	var cfg server.Config
	var listen, certifierRoot string
	c := &cobra.Command{
		Use:   "server --data DIR [--listen ADDR] [--keys DIR/online]",
		Short: "Run the OTA server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			cfg.Logger = g.logger()
			if cfg.DataDir == "" {
				return fmt.Errorf("server: a data directory is required (--data DIR)")
			}
			if err := cfg.ResolveTLS(); err != nil {
				return err
			}
			if certifierRoot != "" {
				r, err := loadCertifierRoot(certifierRoot)
				if err != nil {
					return err
				}
				cfg.CertifierRoot = r
			} else {
				cfg.Logger.Warn("no --certifier-root: releases are deployed without a certificate check")
			}
			s, err := server.New(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			scheme := "https"
			if cfg.TLSCertFile == "" {
				scheme = "http"
				cfg.Logger.Warn("serving plain HTTP (--insecure-http): anyone on the path can read and change the traffic")
			}
			cfg.Logger.Info("serving", "addr", ln.Addr().String(), "scheme", scheme, "data", cfg.DataDir)
			return s.Serve(ctx, ln)
		},
	}
	c.Flags().StringVar(&cfg.DataDir, "data", "", "data directory (SQLite database and artifacts)")
	c.Flags().StringVar(&cfg.KeysDir, "keys", "", "online/ folder of 'ztota keys init' (first start only)")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	c.Flags().StringVar(&cfg.TLSCertFile, "tls-cert", "", "TLS certificate (default: tls/server.pem of --keys, copied to DATA/tls/)")
	c.Flags().StringVar(&cfg.TLSKeyFile, "tls-key", "", "TLS key (default: tls/server.key of --keys, copied to DATA/tls/)")
	c.Flags().BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "serve plain HTTP without a certificate (trusted networks and tests only)")
	c.Flags().StringVar(&certifierRoot, "certifier-root", "", "the certifier's root.json ('ztota cert fetch'): gate deployments on its certificates and revocation list")
	c.Flags().StringVar(&cfg.CertdURL, "certd", "", "certification service whose event feed the server follows to mitigate revocations (needs --certifier-root)")
	c.Flags().StringVar(&cfg.CertdCAFile, "certd-ca", "", "PEM CA pinned for the certification service's certificate")
	addRepairFlags(c, &cfg)
	return c
}

func agentCmd(g *globals) *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the device agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			cfg, err := agent.LoadConfig(cfgPath)
			if err != nil {
				return err
			}
			a, err := agent.New(ctx, cfg, g.logger())
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "agent configuration file (JSON)")
	c.MarkFlagRequired("config")
	return c
}

func releaseCmd(g *globals) *cobra.Command {
	var o release.Options
	var af apiFlags
	var hw string
	var counter uint64
	var gf gateFlags
	var normalProfile, degradedProfile string
	c := &cobra.Command{
		Use:   "release ARTIFACT --name N --version V --counter C --hardware H[,H] --keys DIR [--certd URL | --certificate BUNDLE]",
		Short: "Sign an artifact into the image repository (offline targets key) and upload it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			o.Artifact = args[0]
			o.Meta.ReleaseCounter = counter
			o.Meta.HardwareIDs = splitList(hw)
			if o.Meta.Profiles, err = loadProfiles(normalProfile, degradedProfile); err != nil {
				return err
			}
			if o.Certificate, err = gf.bundle(cmd.Context(), g, o.Artifact, o.Meta.Name); err != nil {
				return err
			}
			res, err := release.Publish(cmd.Context(), api, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "released %s (sha256 %s, %d bytes) in image targets version %d\n", res.Target, res.SHA256, res.Length, res.TargetsVersion)
			if res.Certificate != "" {
				fmt.Fprintf(g.stdout, "  certificate %s\n", res.Certificate)
			}
			for _, p := range res.Dropped {
				fmt.Fprintf(g.stdout, "  dropped %s: listed by the server, not signed by the current targets key\n", p)
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.Meta.Name, "name", "", "release name")
	c.Flags().StringVar(&o.Meta.Version, "version", "", "release version")
	c.Flags().Uint64Var(&counter, "counter", 0, "release counter (anti-rollback; must not decrease)")
	c.Flags().StringVar(&hw, "hardware", "", "comma-separated hardware ids")
	c.Flags().StringVar(&o.Meta.Module, "module", "", "module the release is for (default: the name)")
	c.Flags().StringVar(&o.Meta.ArtifactType, "type", tufrepo.ArtifactBundle, "artifact type")
	c.Flags().StringVar(&o.KeysDir, "keys", "", "keys directory made by 'ztota keys init'")
	c.Flags().StringVar(&o.Meta.Backup, "backup", "", "pre-designated backup: NAME@VERSION or target path of an earlier release of the same module, which devices switch to when the certifier revokes this one")
	c.Flags().StringVar(&normalProfile, "profile", "", "JSON file: the privilege profile the module runs under (signed into the release)")
	c.Flags().StringVar(&degradedProfile, "degraded-profile", "", "JSON file: the least-privilege profile the module keeps when revoked with no usable backup")
	gf.add(c)
	af.add(c)
	return c
}

// loadProfiles reads the privilege profiles given to 'ztota release'
// (none: nil).
func loadProfiles(normal, degraded string) (*tufrepo.Profiles, error) {
	if normal == "" && degraded == "" {
		return nil, nil
	}
	var ps tufrepo.Profiles
	for _, f := range []struct {
		path string
		dst  **sandbox.Profile
	}{{normal, &ps.Normal}, {degraded, &ps.Degraded}} {
		if f.path == "" {
			continue
		}
		data, err := boundedfile.Read(f.path, sandbox.MaxProfileBytes)
		if err != nil {
			return nil, err
		}
		p, err := sandbox.ParseProfile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		*f.dst = &p
	}
	return &ps, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func deployCmd(g *globals) *cobra.Command {
	var req server.DeployRequest
	var af apiFlags
	var devices, waves string
	c := &cobra.Command{
		Use:   "deploy RELEASE (--devices D[,D] | --group G) [--waves 1,10,100] [--failure-threshold 0.1]",
		Short: "Roll a release out to devices in waves",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			req.Release = args[0]
			req.Devices = splitList(devices)
			for _, w := range splitList(waves) {
				f, err := strconv.ParseFloat(w, 64)
				if err != nil {
					return fmt.Errorf("--waves: %q is not a number", w)
				}
				req.Waves = append(req.Waves, f)
			}
			v, err := api.Deploy(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deployment %s of %s to %d devices, waves %v: %s\n", v.ID, v.Target, len(v.Devices), v.Waves, v.Status)
			if v.Gate != "" {
				fmt.Fprintf(g.stdout, "  %s\n", v.Gate)
			}
			return nil
		},
	}
	var hf apiFlags
	halt := &cobra.Command{
		Use: "halt DEPLOYMENT", Short: "Stop a running deployment; devices not yet updated keep what they run", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := hf.client()
			if err != nil {
				return err
			}
			v, err := api.Halt(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deployment %s %s: %s\n", v.ID, v.Status, v.Reason)
			return nil
		},
	}
	hf.add(halt)
	var sf apiFlags
	status := &cobra.Command{
		Use: "status DEPLOYMENT", Short: "Show a deployment and its devices", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := sf.client()
			if err != nil {
				return err
			}
			v, err := api.Deployment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deployment %s of %s: %s (wave %d of %d) %s\n", v.ID, v.Target, v.Status, v.Wave+1, len(v.Waves), v.Reason)
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tWAVE\tSTATUS")
			for _, d := range v.Devices {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", d.DeviceID, d.Wave+1, d.Status)
			}
			return tw.Flush()
		},
	}
	sf.add(status)
	c.AddCommand(halt, status)
	c.Flags().StringVar(&devices, "devices", "", "comma-separated device ids")
	c.Flags().StringVar(&req.Group, "group", "", "device group")
	c.Flags().StringVar(&waves, "waves", "100", "cumulative wave percentages")
	c.Flags().Float64Var(&req.FailureThreshold, "failure-threshold", 0.1, "fraction of opened devices that may fail before the deployment halts")
	af.add(c)
	return c
}

func devicesCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "devices", Short: "Fleet status"}
	list := devicesListCmd(g)
	var af2 apiFlags
	var asJSON bool
	hist := &cobra.Command{
		Use: "history DEVICE", Short: "A device's status reports", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af2.client()
			if err != nil {
				return err
			}
			h, err := api.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(h)
			}
			for _, r := range h {
				fmt.Fprintln(g.stdout, historyLine(r))
			}
			return nil
		},
	}
	af2.add(hist)
	hist.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(list, devicesShowCmd(g), hist, devicesRevokeCmd(g))
	return c
}

func tokenCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "API and enrollment tokens"}
	var af apiFlags
	var scope, name string
	var tokTTL time.Duration
	create := &cobra.Command{
		Use: "create --scope admin|integrator|viewer [--ttl 2160h]", Short: "Create an API token (printed once; the server keeps only its hash)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tokTTL < 0 || tokTTL > 0 && tokTTL < time.Second {
				return fmt.Errorf("--ttl must be at least 1s")
			}
			api, err := af.client()
			if err != nil {
				return err
			}
			t, err := api.CreateToken(cmd.Context(), server.TokenRequest{Scope: scope, Name: name, TTLSeconds: int64(tokTTL / time.Second)})
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, t.Token)
			fmt.Fprintf(g.stderr, "token %s (%s) expires %s\n", t.ID, t.Scope, t.Expires.Format(time.RFC3339))
			return nil
		},
	}
	create.Flags().StringVar(&scope, "scope", "viewer", "admin, integrator or viewer")
	create.Flags().StringVar(&name, "name", "", "a label")
	create.Flags().DurationVar(&tokTTL, "ttl", server.DefaultTokenTTL, "validity (at most 5 years; 0 means the default)")
	af.add(create)
	c.AddCommand(tokenListCmd(g), tokenRevokeCmd(g))
	var af2 apiFlags
	var group string
	var ttl time.Duration
	enroll := &cobra.Command{
		Use: "enroll [--group G]", Short: "Create a one-time device enrollment token", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af2.client()
			if err != nil {
				return err
			}
			t, err := api.EnrollToken(cmd.Context(), group, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, t)
			return nil
		},
	}
	enroll.Flags().StringVar(&group, "group", "", "group the device joins")
	enroll.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "validity")
	af2.add(enroll)
	c.AddCommand(create, enroll)
	return c
}

func demoCmd(g *globals) *cobra.Command {
	var o demo.Options
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole update story on this machine with temporary directories",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			o.Out = g.stdout
			o.Log = g.logger()
			return demo.Run(ctx, o)
		},
	}
	c.Flags().IntVar(&o.Devices, "devices", 3, "number of devices")
	c.Flags().BoolVar(&o.Keep, "keep", false, "keep the temporary directory")
	return c
}
