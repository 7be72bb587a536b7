package certd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
)

// record writes a synthetic OSV record for a Debian package into dir.
func record(t testing.TB, dir, id, pkg, fixed string, withdrawn bool) {
	t.Helper()
	rec := map[string]any{
		"schema_version": "1.6.0",
		"id":             id,
		"modified":       time.Now().UTC().Format(time.RFC3339Nano),
		"summary":        "synthetic advisory " + id,
		"affected": []any{map[string]any{
			"package": map[string]any{"ecosystem": "Debian", "name": pkg},
			"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
				map[string]any{"introduced": "0"}, map[string]any{"fixed": fixed},
			}}},
		}},
	}
	if withdrawn {
		rec["withdrawn"] = time.Now().UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, id+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	os.Chtimes(filepath.Join(dir, id+".json"), later, later)
}

// dpkgStatus is a dpkg status database listing the packages.
func dpkgStatus(pkgs ...string) []byte {
	var b strings.Builder
	for _, p := range pkgs {
		name, version, _ := strings.Cut(p, "=")
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\nDescription: test package\n\n", name, version)
	}
	return []byte(b.String())
}

func sourceDir(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "osv")
	os.Mkdir(dir, 0o755)
	record(t, dir, "TEST-0001", "unrelated", "1.0-1", false)
	return dir
}

func TestWithdrawnAdvisoryIssuesANewCertificateNeverUnrevokes(t *testing.T) {
	dir := sourceDir(t)
	s := newService(t, dir, nil)
	ctx := context.Background()
	x := submitBytes(t, s, "x", dpkgStatus("libfoo=1.0-1", "libc6=2.36-9"), nil)
	y := submitBytes(t, s, "y", dpkgStatus("libbar=3.0-1"), nil)
	if x.State != StateCertified || y.State != StateCertified {
		t.Fatalf("states %s %s, want certified (findings %v)", x.State, y.State, findingIDs(x))
	}
	oldCert := x.Result.Digest

	record(t, dir, "TEST-0002", "libfoo", "2.0-1", false)
	reps, err := s.Poll(ctx)
	if err != nil || len(reps) != 1 {
		t.Fatalf("poll: %v %v", reps, err)
	}
	if reps[0].Reinspected != 1 || !slices.Equal(reps[0].Revoked, []string{x.Artifact}) {
		t.Fatalf("update report %+v: want exactly x re-inspected and revoked", reps[0])
	}
	checkRevocation(t, s, x.Artifact, oldCert, []string{"TEST-0002"})
	_, v1, _ := s.RevocationList(ctx)

	record(t, dir, "TEST-0002", "libfoo", "2.0-1", true)
	reps, err = s.Poll(ctx)
	if err != nil || len(reps) != 1 {
		t.Fatalf("poll: %v %v", reps, err)
	}
	if !slices.Equal(reps[0].Recertified, []string{x.Artifact}) || len(reps[0].Revoked) != 0 {
		t.Fatalf("update report %+v: want x recertified", reps[0])
	}
	now, err := s.Lookup(ctx, x.Artifact)
	if err != nil {
		t.Fatal(err)
	}
	if now.State != StateCertified || now.Result.Digest == oldCert || now.Result.Kind != attest.KindCertificate {
		t.Fatalf("after withdrawal: state %s, result %s %s; want a new certificate", now.State, now.Result.Kind, now.Result.Digest)
	}
	if now.Result.Previous != oldCert {
		t.Errorf("new certificate names previous %q, want %q", now.Result.Previous, oldCert)
	}
	// The old certificate stays revoked in every later list.
	data, v2, _ := s.RevocationList(ctx)
	if v2 < v1 {
		t.Fatalf("list version went down %d → %d", v1, v2)
	}
	l, err := attest.VerifyRevocations(s.root, data, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Lookup(x.Artifact, oldCert); !ok {
		t.Error("the old certificate was silently un-revoked")
	}
	if _, ok := l.Lookup(x.Artifact, now.Result.Digest); ok {
		t.Error("the new certificate is revoked")
	}
}

func TestOnlyAffectedArtifactsAreReinspected(t *testing.T) {
	dir := sourceDir(t)
	s := newService(t, dir, nil)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		submitBytes(t, s, fmt.Sprintf("bar-%d", i), dpkgStatus(fmt.Sprintf("libbar=3.0-%d", i)), nil)
	}
	foo := submitBytes(t, s, "foo", dpkgStatus("libfoo=1.0-1"), nil)
	var before int
	s.db.QueryRow(`SELECT COUNT(*) FROM results`).Scan(&before)

	record(t, dir, "TEST-0003", "libfoo", "0.5-1", false) // does not affect 1.0-1
	reps, err := s.Poll(ctx)
	if err != nil || len(reps) != 1 {
		t.Fatalf("poll: %v %v", reps, err)
	}
	if reps[0].Packages != 1 || reps[0].Reinspected != 1 || len(reps[0].Revoked) != 0 {
		t.Fatalf("report %+v: want one package, one re-inspection, no revocation", reps[0])
	}
	var after int
	s.db.QueryRow(`SELECT COUNT(*) FROM results`).Scan(&after)
	if after != before+1 {
		t.Fatalf("%d new results, want 1 re-inspection", after-before)
	}
	var kind, prev string
	s.db.QueryRow(`SELECT kind, previous FROM results ORDER BY seq DESC LIMIT 1`).Scan(&kind, &prev)
	if kind != attest.KindReinspection || prev != foo.Result.Digest {
		t.Errorf("newest result %s naming %s, want a re-inspection naming %s", kind, prev, foo.Result.Digest)
	}
	// An unchanged source does nothing.
	if reps, err := s.Poll(ctx); err != nil || len(reps) != 0 {
		t.Fatalf("second poll: %v %v", reps, err)
	}
}

func TestNewVerifierVersionReinspectsEverything(t *testing.T) {
	dir := sourceDir(t)
	data := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: data, OSV: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		submitBytes(t, s, fmt.Sprintf("a%d", i), dpkgStatus(fmt.Sprintf("pkg%d=1.0", i)), nil)
	}
	submitBytes(t, s, "rejected-one", dpkgStatus("unrelated=0.1"), nil)
	s.Close()

	// Same version: nothing re-inspected.
	s, err = Open(ctx, Config{DataDir: data, OSV: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	s.db.QueryRow(`SELECT COUNT(*) FROM results WHERE kind = 'reinspection'`).Scan(&n)
	s.Close()
	if n != 0 {
		t.Fatalf("%d re-inspections after a plain restart", n)
	}
	s, err = Open(ctx, Config{DataDir: data, OSV: []string{dir}, VerifierVersion: "9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.QueryRow(`SELECT COUNT(*) FROM results WHERE kind = 'reinspection'`).Scan(&n)
	if n != 3 {
		t.Fatalf("%d re-inspections after a verifier change, want the 3 certified artifacts", n)
	}
	var vv string
	s.db.QueryRow(`SELECT verifier_version FROM artifacts WHERE name = 'a0'`).Scan(&vv)
	if vv != "9.9.9" {
		t.Errorf("inventory taken by verifier %q, want 9.9.9", vv)
	}
}

func TestSourceChangedWhileStoppedIsApplied(t *testing.T) {
	dir := sourceDir(t)
	data := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: data, OSV: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	x := submitBytes(t, s, "x", dpkgStatus("libfoo=1.0-1"), nil)
	s.Close()
	record(t, dir, "TEST-0004", "libfoo", "1.5-1", false)
	s, err = Open(ctx, Config{DataDir: data, OSV: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Lookup(ctx, x.Artifact)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != StateRevoked {
		t.Fatalf("state %s after a source change while stopped, want revoked", out.State)
	}
}

func TestRevocationListIsResignedBeforeItExpires(t *testing.T) {
	dir := sourceDir(t)
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	s := newService(t, dir, func(c *Config) { c.Now = clock; c.RevocationTTL = 2 * time.Hour })
	ctx := context.Background()
	first, v1, err := s.RevocationList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := attest.VerifyRevocations(s.root, first, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	if err := s.refreshRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := s.RevocationList(ctx); v != v1 {
		t.Fatalf("re-signed after a quarter of its validity (v%d → v%d)", v1, v)
	}
	now = now.Add(31 * time.Minute)
	if err := s.refreshRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	second, v2, _ := s.RevocationList(ctx)
	if v2 != v1+1 {
		t.Fatalf("version %d after half the validity, want %d", v2, v1+1)
	}
	next, err := attest.VerifyRevocations(s.root, second, prev, now)
	if err != nil {
		t.Fatalf("the re-signed list does not follow the first: %v", err)
	}
	if !next.Expires.After(prev.Expires) {
		t.Error("the re-signed list does not expire later")
	}
	// The old list is stale once it expires; the new one is not.
	if _, err := attest.VerifyRevocations(s.root, first, nil, prev.Expires.Add(time.Second)); err == nil {
		t.Error("an expired list verified")
	}
}

// TestDebianBinaryPackagesMatchTheirSourcePackage: OSV's Debian records
// name source packages; libssl3 (source openssl) is found by one for
// openssl, and the change of that record re-inspects the artifact.
func TestDebianBinaryPackagesMatchTheirSourcePackage(t *testing.T) {
	dir := sourceDir(t)
	s := newService(t, dir, nil)
	status := []byte("Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\n")
	x := submitBytes(t, s, "x", status, nil)
	if x.State != StateCertified {
		t.Fatalf("state %s", x.State)
	}
	record(t, dir, "TEST-0006", "openssl", "3.0.13-1~deb12u1", false)
	reps, err := s.Poll(context.Background())
	if err != nil || len(reps) != 1 || !slices.Equal(reps[0].Revoked, []string{x.Artifact}) {
		t.Fatalf("poll: %+v %v; want x revoked through its source package", reps, err)
	}
	checkRevocation(t, s, x.Artifact, x.Result.Digest, []string{"TEST-0006"})
}

// TestCertifyKeyRotationReissuesCertificates: after the certify key is
// rotated (a threshold-signed root update), certificates signed by the
// removed key no longer verify; the restarted service re-certifies the
// artifacts that still pass under the new key.
func TestCertifyKeyRotationReissuesCertificates(t *testing.T) {
	dir := sourceDir(t)
	data := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: data, OSV: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	x := submitBytes(t, s, "x", dpkgStatus("libx=1.0"), nil)
	oldRoot := s.root
	s.Close()
	if _, err := certroot.Rotate(filepath.Join(data, "keys"), certroot.RotateOptions{Roles: []string{certroot.RoleCertify}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, Config{DataDir: data, OSV: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.root.Version() != oldRoot.Version()+1 {
		t.Fatalf("root version %d", s.root.Version())
	}
	if _, err := attest.Verify(s.root, x.Envelope, time.Now()); err == nil {
		t.Fatal("a certificate by the removed certify key still verifies")
	}
	out, err := s.Lookup(ctx, x.Artifact)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != StateCertified || out.Result.Digest == x.Result.Digest || out.Result.Previous != x.Result.Digest {
		t.Fatalf("after rotation: %s %s (previous %s)", out.State, out.Result.Digest, out.Result.Previous)
	}
	if _, err := attest.Verify(s.root, out.Envelope, time.Now()); err != nil {
		t.Fatalf("the re-issued certificate does not verify under the new root: %v", err)
	}
	// A client holding the old root follows the chain to the new one.
	next, err := readRootVersion(data, fmt.Sprint(s.root.Version()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldRoot.Update(next, time.Now()); err != nil {
		t.Fatalf("old root does not update to the new one: %v", err)
	}
}

// TestExpiringCertificatesAreRenewed: a certificate with less than a
// quarter of its validity left is replaced by a fresh one while the
// artifact still passes; one that now fails is revoked instead.
func TestExpiringCertificatesAreRenewed(t *testing.T) {
	dir := sourceDir(t)
	now := time.Now().UTC()
	s := newService(t, dir, func(c *Config) { c.Now = func() time.Time { return now } })
	ctx := context.Background()
	x := submitBytes(t, s, "x", dpkgStatus("libx=1.0"), nil)
	y := submitBytes(t, s, "y", dpkgStatus("liby=1.0"), nil)
	valid := time.Duration(s.policy.ValidFor)
	now = now.Add(valid / 2)
	if n, err := s.renewExpiring(ctx); err != nil || n != 0 {
		t.Fatalf("renewed %d at half the validity (%v)", n, err)
	}
	// liby becomes vulnerable through a DB update: revoked then, and not
	// renewed later.
	record(t, dir, "TEST-0008", "liby", "2.0", false)
	if _, err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(valid/4 + time.Hour)
	if n, err := s.renewExpiring(ctx); err != nil || n != 1 {
		t.Fatalf("renewed %d, want 1 (%v)", n, err)
	}
	out, err := s.Lookup(ctx, x.Artifact)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result.Digest == x.Result.Digest || !out.Result.ValidUntil.After(now.Add(valid/2)) {
		t.Fatalf("x not renewed: %s valid until %s", out.Result.Digest, out.Result.ValidUntil)
	}
	if yo, _ := s.Lookup(ctx, y.Artifact); yo.State != StateRevoked {
		t.Fatalf("y is %s, want revoked by the earlier update", yo.State)
	}
}
