package inventory

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	scalibrfs "github.com/google/osv-scalibr/fs"
	"github.com/package-url/packageurl-go"
)

// TestDpkgAgreesWithReferenceExtractor reads the fixture with the
// reference dpkg extractor and checks that both list the same packages,
// versions and source packages. The reference lists only "installed"
// packages; this package also lists those whose files are on disk in
// other states (half-configured here), which are removed before
// comparing.
func TestDpkgAgreesWithReferenceExtractor(t *testing.T) {
	data := readFile(t, "testdata/dpkg/status")
	ext, err := dpkg.New(&cpb.PluginConfig{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ext.(filesystem.Extractor).Extract(context.Background(), &filesystem.ScanInput{
		FS:     scalibrfs.DirFS(t.TempDir()),
		Path:   "var/lib/dpkg/status",
		Reader: bytes.NewReader(data),
	})
	if err != nil {
		t.Fatal(err)
	}
	var ref []string
	for _, p := range res.Packages {
		src := ""
		if m, ok := p.Metadata.(*dpkgmeta.Metadata); ok && m.SourceName != "" && m.SourceName != p.Name {
			src = m.SourceName
		}
		ref = append(ref, p.Name+" "+p.Version+" "+src)
	}
	slices.Sort(ref)

	inv, err := inventoryOf(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, c := range inv.Components {
		if c.Name == "ca-certificates" { // half-configured
			continue
		}
		p, err := packageurl.FromString(c.PURL)
		if err != nil {
			t.Fatalf("%s: %v", c.PURL, err)
		}
		src, _, _ := strings.Cut(p.Qualifiers.Map()["upstream"], "@")
		if src == c.Name {
			src = ""
		}
		ours = append(ours, c.Name+" "+c.Version+" "+src)
	}
	if !slices.Equal(ours, ref) {
		t.Errorf("packages differ from the reference extractor:\n ours %q\n  ref %q", ours, ref)
	}
	t.Logf("reference: %q", ref)
	if len(ref) != 5 {
		t.Errorf("reference extractor found %d packages, want 5: %q", len(ref), ref)
	}
}
