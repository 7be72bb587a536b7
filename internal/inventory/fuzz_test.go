package inventory

import (
	"archive/tar"
	"errors"
	"os"
	"slices"
	"testing"
)

// fuzzLimits keep each fuzz input cheap.
var fuzzLimits = Limits{
	MaxArtifactBytes: 1 << 20,
	MaxEntryBytes:    256 << 10,
	MaxTotalBytes:    4 << 20,
	MaxEntries:       64,
	MaxComponents:    64,
	MaxSBOMBytes:     256 << 10,
	MaxSBOMNodes:     4096,
}

func FuzzFromReader(f *testing.F) {
	status := []byte("Package: a\nStatus: install ok installed\nVersion: 1:2.3-4\nSource: b (2.3-4)\n\nPackage: c\nVersion: 1\n")
	fakeELF := append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 120)...)
	seeds := [][]byte{
		status,
		fakeELF,
		[]byte("MZ\x90\x00"),
		makeTar(f, false, entry{name: "var/lib/dpkg/status", body: status}, entry{name: "bin/x", body: fakeELF}),
		makeTar(f, true, entry{name: "var/lib/dpkg/status", body: status}, entry{name: "l", typ: tar.TypeSymlink, linkname: "../x"}),
		makeTar(f, true, entry{name: "../evil", body: fakeELF}, entry{name: "var/lib/dpkg/status.d/z", body: []byte("Package: z\nVersion: 1\n")}),
		gzipBytes(f, []byte("not a tar")),
		{0x1f, 0x8b},
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := inventoryOf(data, fuzzLimits)
		if err != nil {
			if inv != nil {
				t.Fatal("inventory returned with an error")
			}
			if !errors.Is(err, ErrLimit) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnrecognized) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if inv.Kind != KindTar && inv.Kind != KindGoBinary && inv.Kind != KindDpkgStatus {
			t.Fatalf("Kind %q", inv.Kind)
		}
		if len(inv.Components) > fuzzLimits.MaxComponents || len(inv.Notes) > maxNotes+1 {
			t.Fatalf("%d components, %d notes", len(inv.Components), len(inv.Notes))
		}
		if !slices.IsSortedFunc(inv.Components, compareComponents) {
			t.Fatal("components not sorted")
		}
		for _, c := range inv.Components {
			if c.Name == "" || c.Version == "" || c.PURL == "" || c.Location == "" || (c.Ecosystem != EcosystemGo && c.Ecosystem != EcosystemDebian) {
				t.Fatalf("incomplete component %+v", c)
			}
		}
	})
}

func FuzzParseSBOM(f *testing.F) {
	for _, p := range []string{"testdata/cyclonedx.json", "testdata/spdx.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"name":"stdlib","purl":"pkg:golang/stdlib@go1.21rc2","components":[{"purl":"pkg:deb/debian/a@1"}]}]}`,
		`{"spdxVersion":"SPDX-2.2","packages":[{"name":"a","SPDXID":"SPDXRef-a","externalRefs":[{"referenceCategory":"PACKAGE_MANAGER","referenceType":"purl","referenceLocator":"pkg:golang/github.com/A/b@v1.0.0"}]}]}`,
		`{"spdxVersion":"SPDX-2.1","packages":[]}`,
		`{"bomFormat":"CycloneDX","metadata":{"component":{"purl":"pkg:golang/golang.org/toolchain@v0.0.1-go1.22.3.linux-amd64"}}}`,
		`[[[[]]]]`,
		`<bom/>`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSBOM(data, fuzzLimits)
		if err != nil {
			if s != nil {
				t.Fatal("SBOM returned with an error")
			}
			if !errors.Is(err, ErrLimit) && !errors.Is(err, ErrSBOM) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if s.Format != FormatCycloneDXJSON && s.Format != FormatSPDXJSON {
			t.Fatalf("Format %q", s.Format)
		}
		if !slices.IsSortedFunc(s.Components, compareComponents) {
			t.Fatal("components not sorted")
		}
		for _, c := range s.Components {
			if c.Location != LocationSBOM || c.Name == "" || c.Version == "" || (c.Ecosystem != EcosystemGo && c.Ecosystem != EcosystemDebian) {
				t.Fatalf("bad component %+v", c)
			}
		}
		// Cross-checking an SBOM with itself finds nothing.
		if ds := CrossCheck(&Inventory{Components: s.Components}, s); len(ds) != 0 {
			t.Fatalf("self cross-check: %v", ds)
		}
	})
}
