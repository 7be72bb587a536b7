package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
)

// repairsCmd is "ztota repairs list|show": the repair requests the server
// filed for artifacts the certifier revoked.
func repairsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "repairs", Short: "Repair requests for revoked artifacts"}
	var af apiFlags
	var asJSON bool
	list := &cobra.Command{
		Use: "list", Short: "List repair requests, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			rs, err := api.Repairs(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(rs)
			}
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tARTIFACT\tRELEASES\tADVISORIES\tDEVICES\tOPEN\tCLOSED\tFIX\tDEPLOYMENT\tOPENED")
			for _, r := range rs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", r.ID, r.State, short(r.Artifact), strings.Join(r.Releases, ","),
					strings.Join(r.Advisories, ","), r.Devices, r.Open, r.ClosedCount, dash(r.FixRelease), dash(r.Deployment),
					r.Opened.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	af.add(list)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var af2 apiFlags
	var showJSON bool
	show := &cobra.Command{
		Use: "show ID", Short: "A repair request and its mitigations", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return fmt.Errorf("repair request id %q: want a positive integer", args[0])
			}
			api, err := af2.client()
			if err != nil {
				return err
			}
			r, err := api.Repair(cmd.Context(), id)
			if err != nil {
				return err
			}
			if showJSON {
				return json.NewEncoder(g.stdout).Encode(r)
			}
			fmt.Fprintf(g.stdout, "repair request %d (%s)\nartifact:   %s\nreleases:   %s\nadvisories: %s\ndevices:    %d (%d open, %d closed)\nopened:     %s (certifier event %d)\nreason:     %s\n",
				r.ID, r.State, r.Artifact, strings.Join(r.Releases, ", "), strings.Join(r.Advisories, ", "), r.Devices, r.Open, r.ClosedCount,
				r.Opened.Format(time.RFC3339), r.EventSeq, r.Reason)
			if r.FixRelease != "" {
				fmt.Fprintf(g.stdout, "fix:        %s, deployment %s (%s)\n", r.FixRelease, r.Deployment, r.FixTime.Format(time.RFC3339))
			} else {
				fmt.Fprintln(g.stdout, "fix:        none deployed yet (the server deploys the first certified release of the module with a higher release counter)")
			}
			if !r.Closed.IsZero() {
				fmt.Fprintf(g.stdout, "closed:     %s\n", r.Closed.Format(time.RFC3339))
			}
			fmt.Fprintln(g.stdout)
			return printMitigations(g.stdout, r.Mitigations)
		},
	}
	af2.add(show)
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	c.AddCommand(list, show)
	return c
}

// mitigationsCmd is "ztota mitigations list".
func mitigationsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "mitigations", Short: "Devices running revoked artifacts"}
	var af apiFlags
	var all, asJSON bool
	var device string
	list := &cobra.Command{
		Use: "list", Short: "List mitigations (open ones unless --all)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			state := "open"
			if all {
				state = ""
			}
			ms, err := api.Mitigations(cmd.Context(), state, device)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(ms)
			}
			return printMitigations(g.stdout, ms)
		},
	}
	af.add(list)
	list.Flags().BoolVar(&all, "all", false, "include mitigations that are no longer open")
	list.Flags().StringVar(&device, "device", "", "only this device")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(list)
	return c
}

// printMitigations prints mitigations as a table, then each one's
// timeline: opened (certifier event), what the device reported since
// (revocation-seen, on-backup, degraded, recovered, commits), the fix
// deployment, closed.
func printMitigations(w io.Writer, ms []store.Mitigation) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEVICE\tRELEASE\tARTIFACT\tADVISORIES\tREPAIR\tSTATE\tFIX DEPLOYMENT\tOPENED\tCLOSED")
	for _, m := range ms {
		closed := "-"
		if !m.Closed.IsZero() {
			closed = m.Closed.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", m.ID, m.DeviceID, m.Target, short(m.Artifact),
			strings.Join(m.Advisories, ","), m.Repair, m.State, dash(m.FixDeployment), m.Opened.Format(time.RFC3339), closed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range ms {
		fmt.Fprintf(w, "\nmitigation %d (%s):\n  %s  opened (certifier event %d)\n", m.ID, m.DeviceID, m.Opened.Format(time.RFC3339), m.EventSeq)
		for _, e := range m.Timeline {
			line := fmt.Sprintf("  %s  %s", e.Seen.Format(time.RFC3339), e.State)
			if e.Target != "" {
				line += " " + e.Target
			}
			fmt.Fprintln(w, line)
		}
		if m.FixDeployment != "" {
			fmt.Fprintf(w, "  fix deployment %s\n", m.FixDeployment)
		}
		if !m.Closed.IsZero() {
			by := ""
			if m.ClosedBy != "" {
				by = " by " + m.ClosedBy
			}
			fmt.Fprintf(w, "  %s  %s%s\n", m.Closed.Format(time.RFC3339), m.State, by)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// short abbreviates a hex digest for a table.
func short(sha string) string {
	if len(sha) > 16 {
		return sha[:16]
	}
	return sha
}

// addRepairFlags adds the server's flags of the fix roll-out and the
// repair webhook.
func addRepairFlags(c *cobra.Command, cfg *server.Config) {
	autoFix := true
	c.Flags().BoolVar(&autoFix, "auto-fix", true, "deploy the first certified release of the module with a higher release counter to the devices of each open repair request")
	c.Flags().Float64SliceVar(&cfg.Repair.Waves, "fix-waves", []float64{10, 100}, "waves (cumulative percentages) of the fix deployments")
	c.Flags().Float64Var(&cfg.Repair.FailureThreshold, "fix-failure-threshold", 0.1, "failure threshold of the fix deployments")
	c.Flags().StringVar(&cfg.Repair.Webhook, "repair-webhook", "", "URL receiving the signed repair webhooks (https; http only with --insecure-http)")
	c.Flags().StringVar(&cfg.Repair.WebhookCAFile, "repair-webhook-ca", "", "PEM CA pinned for the repair webhook's certificate")
	prev := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		cfg.Repair.NoAutoFix = !autoFix
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}
