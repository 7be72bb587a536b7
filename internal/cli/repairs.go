package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
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
			fmt.Fprintln(tw, "ID\tSTATE\tARTIFACT\tRELEASES\tADVISORIES\tDEVICES\tOPENED")
			for _, r := range rs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.State, short(r.Artifact), strings.Join(r.Releases, ","),
					strings.Join(r.Advisories, ","), r.Devices, r.Opened.Format(time.RFC3339))
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
			fmt.Fprintf(g.stdout, "repair request %d (%s)\nartifact:   %s\nreleases:   %s\nadvisories: %s\ndevices:    %d\nopened:     %s\nreason:     %s\n",
				r.ID, r.State, r.Artifact, strings.Join(r.Releases, ", "), strings.Join(r.Advisories, ", "), r.Devices,
				r.Opened.Format(time.RFC3339), r.Reason)
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tRELEASE\tSTATE\tOPENED")
			for _, m := range r.Mitigations {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.DeviceID, m.Target, m.State, m.Opened.Format(time.RFC3339))
			}
			return tw.Flush()
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
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDEVICE\tRELEASE\tARTIFACT\tADVISORIES\tREPAIR\tSTATE\tOPENED")
			for _, m := range ms {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.DeviceID, m.Target, short(m.Artifact),
					strings.Join(m.Advisories, ","), m.Repair, m.State, m.Opened.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	af.add(list)
	list.Flags().BoolVar(&all, "all", false, "include mitigations that are no longer open")
	list.Flags().StringVar(&device, "device", "", "only this device")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(list)
	return c
}

// short abbreviates a hex digest for a table.
func short(sha string) string {
	if len(sha) > 16 {
		return sha[:16]
	}
	return sha
}
