package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztota/ztota/internal/store"
)

func tokenListCmd(g *globals) *cobra.Command {
	var af apiFlags
	c := &cobra.Command{
		Use: "list", Short: "List API tokens (ids, names, scopes and times; never the secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			ts, err := api.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCREATED\tEXPIRES\tREVOKED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, t.Created.Format(time.RFC3339), orDash(t.Expires, "never"), orDash(t.Revoked, "-"))
			}
			return tw.Flush()
		},
	}
	af.add(c)
	return c
}

func orDash(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.Format(time.RFC3339)
}

func tokenRevokeCmd(g *globals) *cobra.Command {
	var af apiFlags
	c := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API token (its id from 'ztota token list'); it is refused from then on", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			t, err := api.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "token %s (%s, %s) revoked at %s\n", t.ID, t.Name, t.Scope, t.Revoked.Format(time.RFC3339))
			return nil
		},
	}
	af.add(c)
	return c
}

func devicesRevokeCmd(g *globals) *cobra.Command {
	var af apiFlags
	c := &cobra.Command{
		Use:   "revoke DEVICE",
		Short: "Decommission a device: its requests are refused, its director is no longer signed, it leaves running deployments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := af.client()
			if err != nil {
				return err
			}
			res, err := api.DecommissionDevice(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "device %s decommissioned at %s", res.Device.ID, res.Device.Decommissioned.Format(time.RFC3339))
			if len(res.Cancelled) > 0 {
				fmt.Fprintf(g.stdout, "; cancelled in %s", strings.Join(res.Cancelled, ", "))
			}
			fmt.Fprintln(g.stdout)
			return nil
		},
	}
	af.add(c)
	return c
}

// historyLine renders one report: the device's time, the server's receive
// time, and a flag when the device's time is outside the accepted window.
func historyLine(r store.Report) string {
	flag := ""
	if r.TimeFlag != "" {
		flag = " [device time " + r.TimeFlag + "]"
	}
	mod := ""
	if r.Module != "" {
		mod += " module=" + r.Module
	}
	if r.Mode != "" {
		mod += " mode=" + r.Mode
	}
	if r.Advisories != "" {
		mod += " advisories=" + r.Advisories
	}
	return fmt.Sprintf("%s (received %s)%s #%d %-16s%s %s %s", r.Time.Format(time.RFC3339), r.Received.Format(time.RFC3339), flag, r.Seq, r.State, mod, r.Target, r.Detail)
}
