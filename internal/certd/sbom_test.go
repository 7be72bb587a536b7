package certd

import (
	"context"
	"testing"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/vulnref"
)

// TestLyingSBOMLosesToTheArtifact: the SBOM claims a fixed version and
// hides a package; the verdict follows the artifact's own inventory and
// the signed result records each disagreement.
func TestLyingSBOMLosesToTheArtifact(t *testing.T) {
	dir := sourceDir(t)
	record(t, dir, "TEST-0005", "libfoo", "2.0-1", false)
	s := newService(t, dir, nil)
	sbom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[
		{"type":"library","name":"libfoo","version":"2.0-1","purl":"pkg:deb/debian/libfoo@2.0-1"},
		{"type":"library","name":"libghost","version":"1.0","purl":"pkg:deb/debian/libghost@1.0"}]}`)
	out := submitBytes(t, s, "liar", dpkgStatus("libfoo=1.0-1", "libhidden=3.0"), sbom)
	if out.State != StateRejected || !contains(out.Result.Advisories, "TEST-0005") {
		t.Fatalf("state %s advisories %v: the SBOM's claim won over the artifact", out.State, out.Result.Advisories)
	}
	c, err := attest.Verify(s.root, out.Envelope, s.now())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, d := range c.Result.Disagreements {
		kinds[d.Component.Name] = d.Kind
	}
	want := map[string]string{
		"libfoo":    vulnref.DisagreeVersion,
		"libhidden": vulnref.DisagreeMissingFromSBOM,
		"libghost":  vulnref.DisagreeNotInArtifact,
	}
	for name, kind := range want {
		if kinds[name] != kind {
			t.Errorf("disagreement on %s: %q, want %q (all: %+v)", name, kinds[name], kind, c.Result.Disagreements)
		}
	}
	if len(c.Subjects) != 2 {
		t.Errorf("subjects %+v: want the artifact and the SBOM", c.Subjects)
	}
	if _, err := s.Lookup(context.Background(), out.Artifact); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
