package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/certd"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// osvRecord writes an OSV record for a Debian package fixed in fixed.
func osvRecord(t *testing.T, dir, id, pkg, fixed string) {
	t.Helper()
	rec := map[string]any{
		"schema_version": "1.6.0", "id": id, "modified": time.Now().UTC().Format(time.RFC3339Nano),
		"summary": "advisory " + id,
		"affected": []any{map[string]any{
			"package": map[string]any{"ecosystem": "Debian", "name": pkg},
			"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
				map[string]any{"introduced": "0"}, map[string]any{"fixed": fixed}}}},
		}},
	}
	b, _ := json.Marshal(rec)
	p := filepath.Join(dir, id+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	os.Chtimes(p, later, later)
}

// realCertifier starts a certification service in-process over TLS on
// an OSV directory holding one unrelated advisory; it returns the
// service, its server, its CA file, its trusted root and the directory.
func realCertifier(t *testing.T) (*certd.Service, *httptest.Server, string, *certroot.Root, string) {
	t.Helper()
	osvDir := filepath.Join(t.TempDir(), "osv")
	os.Mkdir(osvDir, 0o755)
	osvRecord(t, osvDir, "TEST-0001", "unrelated", "1.0-1")
	cd, err := certd.Open(ctxT(t), certd.Config{DataDir: t.TempDir(), OSV: []string{osvDir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cd.Close() })
	hs := httptest.NewTLSServer(cd.Handler())
	t.Cleanup(hs.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o644)
	root, err := certroot.Trust(cd.Root())
	if err != nil {
		t.Fatal(err)
	}
	return cd, hs, caFile, root, osvDir
}

// dpkgArtifact writes a dpkg status database listing one package.
func dpkgArtifact(t *testing.T, pkg, version string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), pkg+"-"+version+".status")
	data := fmt.Sprintf("Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\nDescription: test package\n\n", pkg, version)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRealCertifierRevocationMitigates runs a real certification service
// in-process over TLS: it certifies two artifacts that the server
// releases and devices install; the vulnerability database then gains an
// advisory affecting one of them; the certifier re-inspects and revokes
// it, and the server — following the real, signed feed — records
// mitigations for exactly the devices running it and one repair request
// naming the advisory. Then the fix is released and certified: the
// server stores the bundle the feed announces, deploys the fix to those
// devices by itself, and their commits close the repair request.
func TestRealCertifierRevocationMitigates(t *testing.T) {
	ctx := ctxT(t)
	cd, hs, caFile, root, osvDir := realCertifier(t)

	outcomes := make(chan server.MitigationOutcome, 8)
	e := newEnv(t, func(c *server.Config) {
		c.CertdURL, c.CertdCAFile, c.CertifierRoot = hs.URL, caFile, root
		c.FeedWait, c.FeedMaxBackoff = 2*time.Second, 100*time.Millisecond
		c.OnMitigation = func(_ context.Context, o server.MitigationOutcome) { outcomes <- o }
	})
	foo, bar := dpkgArtifact(t, "libfoo", "1.0-1"), dpkgArtifact(t, "libbar", "3.0-1")
	for _, p := range []string{foo, bar} {
		data, _ := os.ReadFile(p)
		out, err := cd.Submit(ctx, filepath.Base(p), bytes.NewReader(data), nil)
		if err != nil || out.Result.Verdict != "pass" {
			t.Fatalf("certifying %s: %+v %v", p, out, err)
		}
		// The gate (the same certifier root) deploys only certified
		// releases: the certifier's bundle goes to the server first.
		bundle, err := cd.Bundle(ctx, out.Result.Digest)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(server.CertBundle{Envelope: bundle.Envelope, Kind: bundle.Kind, Receipt: &bundle.Receipt})
		if a := e.api(t, "PUT", "/v1/certificates/"+out.Artifact, body); a.code != http.StatusOK {
			t.Fatalf("storing the certificate of %s: %s", p, a)
		}
	}
	ds := e.fleet(t, 3)
	vFoo := e.Release(foo, "1.0", 1, "hw1").Target
	// libbar is another module: its release is no fix for libfoo's.
	relBar, err := release.Publish(ctx, e.Admin, release.Options{Artifact: bar, KeysDir: e.KeysDir,
		Meta: tufrepo.ImageMeta{Name: "bar", Version: "3.0", ReleaseCounter: 2, HardwareIDs: []string{"hw1"}, Module: "bar"}})
	if err != nil {
		t.Fatal(err)
	}
	vBar := relBar.Target
	e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d00","d01"]}`, vFoo))
	e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d02"]}`, vBar))
	for i, d := range ds {
		target := vFoo
		if i == 2 {
			target = vBar
		}
		e.mustPost(t, d, d.rep(report.StateCommitted, target))
	}
	follow(t, e.Server)

	start := time.Now()
	osvRecord(t, osvDir, "TEST-0002", "libfoo", "2.0-1")
	if reps, err := cd.Poll(ctx); err != nil || len(reps) != 1 || len(reps[0].Revoked) != 1 {
		t.Fatalf("database update: %+v %v", reps, err)
	}
	select {
	case o := <-outcomes:
		t.Logf("revocation to mitigations recorded: %s", time.Since(start))
		if !slices.Equal(o.Devices, []string{"d00", "d01"}) || !slices.Equal(o.Advisories, []string{"TEST-0002"}) {
			t.Fatalf("outcome %+v", o)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no mitigation 30 s after the revocation; feed status %+v", e.Server.FeedStatus(ctx))
	}
	// The server fetched the certifier's new list itself before nudging:
	// devices find the revocation at their server with no one pushing it.
	fooSHA := sha256Hex(mustRead(t, foo))
	a := e.api(t, "GET", "/v1/revocations", nil)
	var env struct {
		Payload []byte `json:"payload"`
	}
	if a.code != http.StatusOK || json.Unmarshal(a.body, &env) != nil || !bytes.Contains(env.Payload, []byte(fooSHA)) {
		t.Fatalf("the server's revocation list after the revocation does not revoke %s: %s", fooSHA, a)
	}
	// Let the follower reach the certifier's last event.
	testbed.WaitFor(t, 20*time.Second, "the follower at the feed's end", func() bool {
		evs, err := cd.Events(ctx, 0, certd.MaxEventsPerPage, 0)
		return err == nil && len(evs) > 0 && e.Server.FeedStatus(ctx).Cursor == evs[len(evs)-1].Seq
	})
	st := e.Server.Store()
	ms, _ := st.Mitigations(ctx, store.MitigationFilter{})
	var got []string
	for _, m := range ms {
		got = append(got, m.DeviceID)
	}
	if !slices.Equal(got, []string{"d00", "d01"}) {
		t.Fatalf("mitigated devices %v, want d00 d01 (d02 runs another artifact)", got)
	}
	rs, _ := st.Repairs(ctx)
	if len(rs) != 1 || rs[0].Devices != 2 || !slices.Equal(rs[0].Advisories, []string{"TEST-0002"}) ||
		!slices.Equal(rs[0].Releases, []string{vFoo}) || !strings.Contains(rs[0].Reason, "TEST-0002") {
		t.Fatalf("repair requests %+v", rs)
	}
	if fs := e.Server.FeedStatus(ctx); fs.Refused != 0 || fs.LastError != "" {
		t.Fatalf("feed status %+v", fs)
	}

	// The fix: libfoo 2.0-1 is released (counter 3), then certified by
	// the certifier. The server fetches the bundle the feed announces,
	// verifies it under the pinned root and deploys the fix to exactly
	// d00 and d01 by itself; their commits close the mitigations and the
	// repair request.
	foo2 := dpkgArtifact(t, "libfoo", "2.0-1")
	vFoo2 := e.Release(foo2, "2.0", 3, "hw1").Target
	if fds, err := e.Server.Autofix(ctx); err != nil || len(fds) != 0 {
		t.Fatalf("fix scan before the fix is certified: %+v %v", fds, err)
	}
	data, _ := os.ReadFile(foo2)
	if out, err := cd.Submit(ctx, filepath.Base(foo2), bytes.NewReader(data), nil); err != nil || out.Result.Verdict != "pass" {
		t.Fatalf("certifying the fix: %+v %v", out, err)
	}
	r := waitFixDeployment(t, st)
	v := e.view(t, r.Deployment)
	if r.FixRelease != vFoo2 || v.Target != vFoo2 || len(v.Devices) != 2 || v.Devices[0].DeviceID != "d00" || v.Devices[1].DeviceID != "d01" {
		t.Fatalf("fix deployment %+v of repair %+v", v, r)
	}
	for _, d := range ds[:2] {
		e.mustPost(t, d, d.rep(report.StateCommitted, vFoo2))
	}
	if rs, _ := st.Repairs(ctx); rs[0].State != store.RepairClosed || rs[0].Open != 0 || rs[0].ClosedCount != 2 {
		t.Fatalf("repair request after the fix: %+v", rs[0])
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
