package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/vulnfixture"
)

func copyInto(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// TestCertificationServiceRealProcesses runs `ztota certd` as a process
// and drives it with the CLI only: certify real Go binaries, verify a
// certificate offline, let the watched source change and upload a newer
// snapshot, and see the revocations reach the offline check.
func TestCertificationServiceRealProcesses(t *testing.T) {
	needBinary(t)
	osv, err := vulnfixture.FindOSVData()
	if err != nil {
		t.Skipf("SKIPPING: real OSV data not available: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	progs, err := vulnfixture.Build(ctx, vulnfixture.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	path := map[string]string{}
	for _, p := range progs {
		path[p.Name] = p.Path
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "go-all.zip")
	copyInto(t, filepath.Join(osv, vulnfixture.Snapshot20250101+".zip"), src)
	data := filepath.Join(dir, "certd")
	// certd serves HTTPS with a certificate of a CA made by 'keys init';
	// the CLI pins that CA.
	tlsKeys := filepath.Join(dir, "tlskeys")
	ztota(t, "keys", "init", "--out", tlsKeys)
	ca, cert, key := keyset.TLSFiles(filepath.Join(tlsKeys, keyset.OnlineDir))
	cd := startProc(t, "certd", baseEnv(), "certd", "--data", data, "--osv", src,
		"--listen", "127.0.0.1:0", "--watch", "200ms", "--tls-cert", cert, "--tls-key", key)
	addr := cd.waitLine(regexp.MustCompile(`certification service listening" addr=(\S+)`), 60*time.Second)[1]
	api := []string{"--certd", "https://" + addr, "--ca", ca}
	write := append([]string{"--token-file", filepath.Join(data, "admin.token")}, api...)

	// Certify two clean programs; a vulnerable one is rejected (exit 3).
	for _, name := range []string{"control", "recent"} {
		out, errOut, code := ztotaExit(t, append([]string{"cert", "submit", path[name], "--name", name,
			"--out", filepath.Join(dir, name+".bundle.json")}, write...)...)
		if code != 0 || !strings.Contains(out, "state      certified") {
			t.Fatalf("submit %s: exit %d\n%s%s", name, code, out, errOut)
		}
	}
	out, errOut, code := ztotaExit(t, append([]string{"cert", "submit", path["textold"], "--name", "textold"}, write...)...)
	if code != 3 || !strings.Contains(out, "GO-2021-0113") || !strings.Contains(errOut, "rejected") {
		t.Fatalf("submit textold: exit %d, want 3 with GO-2021-0113\n%s%s", code, out, errOut)
	}
	// Bad input through the CLI: a clear error, exit 1.
	if _, errOut, code := ztotaExit(t, append([]string{"cert", "submit", src}, write...)...); code != 1 || !strings.Contains(errOut, "HTTP 422") {
		t.Fatalf("submitting a zip of JSON: exit %d: %s", code, errOut)
	}
	if _, errOut, code := ztotaExit(t, append([]string{"cert", "submit", path["control"]}, api...)...); code != 1 || !strings.Contains(errOut, "token") {
		t.Fatalf("submitting without a token: exit %d: %s", code, errOut)
	}

	// Offline verification of a fetched bundle against the pinned root.
	off := filepath.Join(dir, "offline")
	ztota(t, append([]string{"cert", "fetch", path["recent"], "--out", off}, api...)...)
	root := filepath.Join(data, "keys", "root.json") // pinned out of band
	verify := func(name string) (string, string, int) {
		return ztotaExit(t, "verify", filepath.Join(dir, name+".bundle.json"), "--root", root,
			"--artifact", path[name], "--revocations", filepath.Join(off, "revocations.json"), "--require-log")
	}
	if out, errOut, code := verify("recent"); code != 0 || !strings.Contains(out, "in log") {
		t.Fatalf("verify recent: exit %d\n%s%s", code, out, errOut)
	}
	// Attack 4 of issue 6 through real processes: keep this list (it does
	// not revoke recent) and record it in a verifier state file.
	state, oldList := filepath.Join(dir, "verify-state.json"), filepath.Join(dir, "revocations-old.json")
	copyInto(t, filepath.Join(off, "revocations.json"), oldList)
	if out, errOut, code := ztotaExit(t, "verify", filepath.Join(off, "bundle.json"), "--root", root, "--artifact", path["recent"],
		"--revocations", oldList, "--require-log", "--state", state); code != 0 {
		t.Fatalf("verify recent with state: exit %d\n%s%s", code, out, errOut)
	}
	// The wrong artifact is refused.
	if _, errOut, code := ztotaExit(t, "verify", filepath.Join(dir, "recent.bundle.json"), "--root", root,
		"--artifact", path["control"]); code != 1 || !strings.Contains(errOut, "another artifact") {
		t.Fatalf("verify against the wrong artifact: exit %d: %s", code, errOut)
	}

	// The watched source moves to 2025-07-01: "recent" is revoked.
	copyInto(t, filepath.Join(osv, vulnfixture.Snapshot20250701+".zip"), src)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := ztota(t, append([]string{"cert", "show", path["recent"]}, api...)...)
		if strings.Contains(out, "state      revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recent not revoked after the source changed:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// An uploaded 2026-08-21 snapshot changes nothing for control.
	ztota(t, append([]string{"cert", "db", "load", filepath.Join(osv, vulnfixture.Snapshot20260821+".zip")}, write...)...)
	ztota(t, append([]string{"cert", "fetch", path["recent"], "--out", off}, api...)...)
	out, errOut, code = verify("recent")
	if code != 1 || !strings.Contains(errOut, "revoked") || !strings.Contains(errOut, "GO-2025-3553") {
		t.Fatalf("verify revoked recent: exit %d, want a revocation naming GO-2025-3553 (a present finding)\n%s%s", code, out, errOut)
	}
	if out, errOut, code := verify("control"); code != 0 {
		t.Fatalf("verify control: exit %d\n%s%s", code, out, errOut)
	}
	// With the state: the newer list is recorded by the run that finds
	// recent revoked (its older receipt proved consistent with the recorded
	// checkpoint through --log-url); the old list replayed is then refused
	// as a rollback and the state file does not change.
	out, errOut, code = ztotaExit(t, "verify", filepath.Join(dir, "recent.bundle.json"), "--root", root, "--artifact", path["recent"],
		"--revocations", filepath.Join(off, "revocations.json"), "--require-log", "--state", state, "--log-url", "https://"+addr, "--ca", ca)
	if code != 1 || !strings.Contains(errOut, "certificate revoked") {
		t.Fatalf("verify revoked recent with state: exit %d\n%s%s", code, out, errOut)
	}
	recorded, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = ztotaExit(t, "verify", filepath.Join(dir, "recent.bundle.json"), "--root", root, "--artifact", path["recent"],
		"--revocations", oldList, "--require-log", "--state", state, "--log-url", "https://"+addr, "--ca", ca)
	if code != 1 || !strings.Contains(errOut, "older than the trusted one") {
		t.Fatalf("the old list replayed with state: exit %d, want a rollback refusal\n%s%s", code, out, errOut)
	}
	if again, _ := os.ReadFile(state); !bytes.Equal(again, recorded) {
		t.Fatal("a refused replay changed the verifier state")
	}
	list := ztota(t, append([]string{"cert", "list", "--state", "revoked"}, api...)...)
	if !strings.Contains(list, "recent") || strings.Contains(list, "control") {
		t.Fatalf("revoked list:\n%s", list)
	}
	events := ztota(t, append([]string{"cert", "events"}, api...)...)
	for _, kind := range []string{" certificate ", " rejection ", " reinspection ", " revocation ", " revocation-list "} {
		if !strings.Contains(events, kind) {
			t.Errorf("event feed lacks %q:\n%s", kind, events)
		}
	}
	cd.stop(10 * time.Second)
}
