package cli

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// TestRepairsAndMitigationsCommands runs 'ztota repairs list', 'repairs
// show' and 'mitigations list' against a real server holding a repair
// request and its mitigations, and a malformed and an unknown id.
func TestRepairsAndMitigationsCommands(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	ctx := testbed.Ctx(t)
	sha := strings.Repeat("ab", 32)
	now := time.Now()
	err := b.Server.Store().Tx(ctx, func(tx *sql.Tx) error {
		id, _, err := store.OpenRepairTx(ctx, tx, store.Repair{Artifact: sha, Releases: []string{"app/1.0/x.tar"},
			Advisories: []string{"GO-2024-0001"}, Devices: 2, Reason: "revoked", EventSeq: 4}, now)
		if err != nil {
			return err
		}
		for _, d := range []string{"dev-1", "dev-2"} {
			if _, err := store.OpenMitigationTx(context.Background(), tx, store.Mitigation{DeviceID: d, Artifact: sha,
				Target: "app/1.0/x.tar", Advisories: []string{"GO-2024-0001"}, Repair: id, EventSeq: 4}, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	api := []string{"--server", b.URL, "--insecure-http", "--token", b.Admin.Token}
	code, out := run(t, append([]string{"repairs", "list"}, api...)...)
	if code != 0 || !strings.Contains(out, "GO-2024-0001") || !strings.Contains(out, sha[:16]) || !strings.Contains(out, "open") {
		t.Fatalf("repairs list: %d %s", code, out)
	}
	code, out = run(t, append([]string{"repairs", "show", "1"}, api...)...)
	if code != 0 || !strings.Contains(out, "artifact:   "+sha) || !strings.Contains(out, "devices:    2") ||
		!strings.Contains(out, "dev-1") || !strings.Contains(out, "dev-2") {
		t.Fatalf("repairs show: %d %s", code, out)
	}
	code, out = run(t, append([]string{"mitigations", "list", "--device", "dev-2"}, api...)...)
	if code != 0 || !strings.Contains(out, "dev-2") || strings.Contains(out, "dev-1") || !strings.Contains(out, "app/1.0/x.tar") {
		t.Fatalf("mitigations list --device dev-2: %d %s", code, out)
	}
	// Closing dev-1's mitigation: 'mitigations list' hides it unless --all,
	// which shows its timeline with the closing release.
	err = b.Server.Store().Tx(ctx, func(tx *sql.Tx) error {
		_, err := store.CloseMitigationTx(ctx, tx, 1, store.MitigationClosed, "app/2.0/x.tar", now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out = run(t, append([]string{"mitigations", "list"}, api...)...)
	if code != 0 || strings.Contains(out, "dev-1") || !strings.Contains(out, "dev-2") || !strings.Contains(out, "opened (certifier event 4)") {
		t.Fatalf("mitigations list: %d %s", code, out)
	}
	code, out = run(t, append([]string{"mitigations", "list", "--all"}, api...)...)
	if code != 0 || !strings.Contains(out, "dev-1") || !strings.Contains(out, "closed by app/2.0/x.tar") {
		t.Fatalf("mitigations list --all: %d %s", code, out)
	}
	code, out = run(t, append([]string{"repairs", "list"}, api...)...)
	if code != 0 || !strings.Contains(out, "OPEN") || !strings.Contains(out, "  1  ") {
		t.Fatalf("repairs list counts: %d %s", code, out)
	}
	code, out = run(t, append([]string{"repairs", "show", "1"}, api...)...)
	if code != 0 || !strings.Contains(out, "2 (1 open, 1 closed)") || !strings.Contains(out, "none deployed yet") {
		t.Fatalf("repairs show counts: %d %s", code, out)
	}
	if code, out := run(t, append([]string{"repairs", "show", "x"}, api...)...); code == 0 || !strings.Contains(out, "positive integer") {
		t.Fatalf("repairs show x: %d %s", code, out)
	}
	if code, out := run(t, append([]string{"repairs", "show", "9"}, api...)...); code == 0 || !strings.Contains(out, "404") {
		t.Fatalf("repairs show 9: %d %s", code, out)
	}
}

// TestServerCertdFlags: 'ztota server --certd URL' without
// --certifier-root refuses to start and says what is missing.
func TestServerCertdFlags(t *testing.T) {
	code, out := run(t, "server", "--data", t.TempDir(), "--insecure-http", "--listen", "127.0.0.1:0",
		"--certd", "https://127.0.0.1:1")
	if code == 0 || !strings.Contains(out, "--certifier-root") {
		t.Fatalf("server --certd without a root: %d %s", code, out)
	}
}

// TestServerRepairFlags: a repair webhook that is not an http(s) URL, a
// CA without a webhook and bad fix waves refuse to start.
func TestServerRepairFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--repair-webhook", "ftp://x/hook"}, "--repair-webhook"},
		{[]string{"--repair-webhook-ca", "ca.pem"}, "needs --repair-webhook"},
		{[]string{"--fix-waves", "50"}, "waves"},
		{[]string{"--auto-fix=false", "--fix-failure-threshold", "3"}, "failure_threshold"},
	} {
		args := append([]string{"server", "--data", t.TempDir(), "--insecure-http", "--listen", "127.0.0.1:0"}, c.args...)
		if code, out := run(t, args...); code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("server %v: %d %s", c.args, code, out)
		}
	}
}
