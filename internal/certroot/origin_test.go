package certroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/keys"
)

// rootSpecs returns dir's current root, the specs of its roles (to build
// a variant of it) and its root key of version 1.
func rootSpecs(t *testing.T, dir string) (*Root, map[string]RoleSpec, *keys.Key) {
	t.Helper()
	cur, err := LoadCurrent(dir)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := keys.Load(filepath.Join(dir, OfflineDir, RootKeyFile(1)))
	if err != nil {
		t.Fatal(err)
	}
	specs := map[string]RoleSpec{}
	for _, role := range Roles {
		specs[role] = cur.spec(role)
	}
	return cur, specs, rk
}

// oldStyleDir makes a trust directory whose version 1 pins no log origin,
// as every root made before origins were pinned.
func oldStyleDir(t *testing.T) string {
	t.Helper()
	dir := initDir(t, Options{})
	cur, specs, rk := rootSpecs(t, dir)
	specs[RoleLog] = RoleSpec{Keys: specs[RoleLog].Keys, Threshold: 1} // no origin
	data, err := Build(1, specs, cur.Expires(), rk)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, CurrentRootFile), filepath.Join(dir, RootsDir, VersionFile(1))} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLogOriginIsPinnedAndMigratedByRotation covers the root side of field
// failure 7 of issue 6: the log origin a verifier checks receipts against
// comes from the signed root, not from the checkpoint. A new root pins it;
// a root made before pins none and says so with ErrNoLogOrigin; rotating
// such a root pins it in the next version; a pinned origin cannot be
// changed by a rotation.
func TestLogOriginIsPinnedAndMigratedByRotation(t *testing.T) {
	dir := initDir(t, Options{LogOrigin: "example-certd/log"})
	r, err := LoadCurrent(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := r.LogOrigin(); err != nil || o != "example-certd/log" {
		t.Fatalf("LogOrigin %q, %v", o, err)
	}
	vkey, err := r.PinnedLogVerifierKey()
	if err != nil || !strings.HasPrefix(vkey, "example-certd/log+") {
		t.Fatalf("pinned verifier key %q, %v", vkey, err)
	}
	if o, _ := initRoot(t, Options{}).LogOrigin(); o != DefaultLogOrigin {
		t.Fatalf("default origin %q", o)
	}
	// A pinned origin is kept, and may not be changed.
	if _, err := Rotate(dir, RotateOptions{Now: t0, Roles: []string{RoleLog}}); err != nil {
		t.Fatal(err)
	}
	r2, _ := LoadCurrent(dir)
	if o, _ := r2.LogOrigin(); o != "example-certd/log" {
		t.Fatalf("origin after rotating the log key: %q", o)
	}
	if _, err := Rotate(dir, RotateOptions{Now: t0, LogOrigin: "another/log"}); err == nil {
		t.Fatal("a rotation changed the pinned origin")
	}

	// Migration of a root without an origin.
	old := oldStyleDir(t)
	r1, err := LoadCurrent(old)
	if err != nil {
		t.Fatalf("an old root no longer loads: %v", err)
	}
	if _, err := r1.LogOrigin(); !errors.Is(err, ErrNoLogOrigin) {
		t.Fatalf("old root LogOrigin: %v, want ErrNoLogOrigin", err)
	}
	if _, err := r1.PinnedLogVerifierKey(); !errors.Is(err, ErrNoLogOrigin) {
		t.Fatalf("old root PinnedLogVerifierKey: %v, want ErrNoLogOrigin", err)
	}
	next, err := Rotate(old, RotateOptions{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r1.Update(next, t0)
	if err != nil {
		t.Fatalf("the migrated root does not follow the old one: %v", err)
	}
	if o, err := n.LogOrigin(); err != nil || o != DefaultLogOrigin || n.Version() != 2 {
		t.Fatalf("migrated root version %d origin %q, %v", n.Version(), o, err)
	}
}

func initRoot(t *testing.T, o Options) *Root {
	t.Helper()
	r, err := LoadCurrent(initDir(t, o))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestParseRefusesBadOrigins: the origin is only on the log role, a
// string, and a valid log name.
func TestParseRefusesBadOrigins(t *testing.T) {
	cur, specs, rk := rootSpecs(t, initDir(t, Options{}))
	c := specs[RoleCertify]
	c.Origin = "x/log"
	specs[RoleCertify] = c
	if _, err := Build(1, specs, cur.Expires(), rk); err == nil {
		t.Fatal("built a root with an origin on the certify role")
	}
	for _, bad := range []string{`"origin":"has space"`, `"origin":5`, `"origin":"a+b"`} {
		doc := strings.Replace(string(cur.Bytes()), `"origin":"`+DefaultLogOrigin+`"`, bad, 1)
		if doc == string(cur.Bytes()) {
			t.Fatal("origin not found in the root document")
		}
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", bad, err)
		}
	}
	for _, bad := range []string{"", "has space", "a+b", strings.Repeat("x", MaxOriginLength+1)} {
		if err := Init(t.TempDir(), Options{Now: t0, LogOrigin: bad}); bad != "" && err == nil {
			t.Errorf("Init with origin %q accepted", bad)
		}
	}
}
