package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztota/ztota/internal/store"
)

// devicesListCmd prints one row per device and module: a device runs one
// release per module, each in its own mode (normal, backup, degraded).
func devicesListCmd(g *globals) *cobra.Command {
	var af apiFlags
	var asJSON bool
	var group string
	c := &cobra.Command{
		Use: "list", Short: "List devices, one row per device and module", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			devs, err := api.Devices(cmd.Context(), group)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(devs)
			}
			return printDeviceList(g.stdout, devs)
		},
	}
	af.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (each device with its modules)")
	c.Flags().StringVar(&group, "group", "", "only the devices of this group")
	return c
}

// printDeviceList prints the table; STATE, INSTALLED and ASSIGNED are
// empty when unknown (scripts read the columns by the header's positions).
func printDeviceList(w io.Writer, devs []store.Device) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tMODULE\tSTATE\tINSTALLED\tASSIGNED\tMODE\tWHY\tSINCE\tHARDWARE\tLAST SEEN")
	for _, d := range devs {
		state := d.State
		if !d.Decommissioned.IsZero() {
			state = "decommissioned"
		}
		if len(d.Modules) == 0 {
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\t%s\t-\t-\t-\t%s\t%s\n", d.ID, state, d.Installed, d.Assigned, d.HardwareID, orDash(d.LastSeen, "never"))
			continue
		}
		for _, m := range d.Modules {
			st := state
			if m.LastState != "" && d.Decommissioned.IsZero() {
				st = m.LastState
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, m.Module, st, m.Release, m.Assigned,
				dash(m.Mode), why(m.Why), orDash(m.Since, "-"), d.HardwareID, orDash(d.LastSeen, "never"))
		}
	}
	return tw.Flush()
}

func why(ids []string) string {
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, ",")
}

// DeviceShow is what 'ztota devices show --json' prints.
type DeviceShow struct {
	Device  store.Device   `json:"device"`
	History []store.Report `json:"history"`
}

func devicesShowCmd(g *globals) *cobra.Command {
	var af apiFlags
	var asJSON bool
	var limit int
	c := &cobra.Command{
		Use: "show DEVICE", Short: "A device, its modules and its recent status reports", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 10000 {
				return fmt.Errorf("--history must be between 1 and 10000")
			}
			api, err := af.client()
			if err != nil {
				return err
			}
			d, err := api.Device(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			h, err := api.RecentHistory(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if h == nil {
				h = []store.Report{}
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(DeviceShow{Device: d, History: h})
			}
			return printDevice(g.stdout, d, h)
		},
	}
	af.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().IntVar(&limit, "history", 20, "how many of the newest reports to show")
	return c
}

func printDevice(w io.Writer, d store.Device, h []store.Report) error {
	state := d.State
	if !d.Decommissioned.IsZero() {
		state = "decommissioned at " + d.Decommissioned.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "device:     %s\n", d.ID)
	fmt.Fprintf(w, "hardware:   %s\n", d.HardwareID)
	fmt.Fprintf(w, "group:      %s\n", dash(d.Group))
	fmt.Fprintf(w, "enrolled:   %s\n", d.Enrolled.Format(time.RFC3339))
	fmt.Fprintf(w, "last seen:  %s\n", orDash(d.LastSeen, "never"))
	fmt.Fprintf(w, "state:      %s\n", dash(state))
	fmt.Fprintf(w, "\nmodules:\n")
	if len(d.Modules) == 0 {
		fmt.Fprintf(w, "  none (no release assigned or committed yet; installed: %s)\n", dash(d.Installed))
	} else {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MODULE\tRELEASE\tVERSION\tASSIGNED\tDEPLOYMENT\tMODE\tWHY\tSINCE\tSINCE (DEVICE)\tLAST REPORT")
		for _, m := range d.Modules {
			last := "-"
			if m.LastState != "" {
				last = m.LastState + " at " + orDash(m.LastReport, "-")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Module, dash(m.Release), dash(m.Version), dash(m.Assigned),
				dash(m.Deployment), dash(m.Mode), why(m.Why), orDash(m.Since, "-"), orDash(m.SinceDevice, "-"), last)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nrecent reports (%d):\n", len(h))
	for _, r := range h {
		fmt.Fprintln(w, "  "+historyLine(r))
	}
	return nil
}
