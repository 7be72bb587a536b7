package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/release"
)

// publishRoot sends a new root; for the image repository it keeps the
// current image targets verifiable under it (re-signing them with a new
// targets key when needed), since the server refuses a root under which
// they would not verify.
func publishRoot(ctx context.Context, g *globals, api *apiclient.Client, dir, repo string, data []byte, server string) error {
	if repo == "image" {
		res, err := release.PublishImageRoot(ctx, api, dir, data)
		if err != nil {
			return err
		}
		printResign(g, res)
		fmt.Fprintf(g.stdout, "published the new %s root to %s\n", repo, server)
		return nil
	}
	if err := api.PublishRoot(ctx, repo, data); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "published the new %s root to %s\n", repo, server)
	return nil
}

func printResign(g *globals, res release.ResignResult) {
	if !res.Resigned {
		return
	}
	from := "the server's copy"
	if res.FromRecord {
		from = "the last targets this keys directory signed"
	}
	fmt.Fprintf(g.stdout, "image targets re-signed with the new targets key from %s: version %d, %d targets\n", from, res.TargetsVersion, len(res.Targets))
	if !res.FromRecord {
		// No record of what this keys directory signed: show what was
		// vouched for, to be checked against the releases made.
		for _, p := range res.Targets {
			fmt.Fprintf(g.stdout, "  re-signed %s\n", p)
		}
	}
	for _, p := range res.Dropped {
		fmt.Fprintf(g.stdout, "  dropped %s: listed by the server, never signed by this keys directory\n", p)
	}
}

// hasToken says whether a token was given in any of the ways token()
// reads: a command publishes only then.
func (a *apiFlags) hasToken() bool {
	return a.token != "" || a.tokenFile != "" || os.Getenv("ZTOTA_TOKEN") != ""
}
