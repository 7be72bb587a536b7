package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func sbomComp(eco, name, version, purl string) vulnref.Component {
	return vulnref.Component{Ecosystem: eco, Name: name, Version: version, PURL: purl, Location: LocationSBOM}
}

func TestParseCycloneDX(t *testing.T) {
	s, err := ParseSBOM(readFile(t, "testdata/cyclonedx.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Format != FormatCycloneDXJSON {
		t.Errorf("Format = %q", s.Format)
	}
	want := []vulnref.Component{
		sbomComp("Debian", "base-files", "12.4+deb12u5", "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12"),
		sbomComp("Debian", "busybox", "1:1.35.0-4+b3", "pkg:deb/debian/busybox@1%3A1.35.0-4%2Bb3?arch=amd64&distro=debian-12&upstream=busybox%401%3A1.35.0-4"),
		sbomComp("Debian", "curl", "7.88.1-10+deb12u5", "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12"),
		sbomComp("Debian", "libc6", "2.36-9+deb12u3", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=glibc"),
		sbomComp("Debian", "libssl3", "3.0.11-1~deb12u2", "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"),
		sbomComp("Debian", "zlib1g", "1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib"),
		// The module path keeps its case, although purls are case-folded.
		sbomComp("Go", "github.com/ExampleOrg/Toml", "1.3.2", "pkg:golang/github.com/ExampleOrg/Toml@v1.3.2"),
		// Nested inside the main module's component.
		sbomComp("Go", "github.com/example/logging", "1.9.3", "pkg:golang/github.com/example/logging@v1.9.3"),
		sbomComp("Go", "golang.org/x/sync", "0.20.0", "pkg:golang/golang.org/x/sync@v0.20.0"),
		sbomComp("Go", "golang.org/x/text", "0.3.5", "pkg:golang/golang.org/x/text@v0.3.5"),
		sbomComp("Go", "stdlib", "1.22.3", "pkg:golang/stdlib@1.22.3"),
	}
	if !reflect.DeepEqual(s.Components, want) {
		t.Errorf("components:\n got %+v\nwant %+v", s.Components, want)
	}
	wantNotes := []string{
		"2 entries without a package URL skipped",
		"1 Go or Debian entries without a usable version skipped",
		`1 entries of purl type "npm" not compared (the artifact inventory covers Go and Debian)`,
	}
	if !reflect.DeepEqual(s.Notes, wantNotes) {
		t.Errorf("notes:\n got %q\nwant %q", s.Notes, wantNotes)
	}
}

func TestParseSPDX(t *testing.T) {
	s, err := ParseSBOM(readFile(t, "testdata/spdx.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Format != FormatSPDXJSON {
		t.Errorf("Format = %q", s.Format)
	}
	want := []vulnref.Component{
		sbomComp("Debian", "base-files", "12.4+deb12u5", "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12"),
		sbomComp("Debian", "ca-certificates", "20230311", "pkg:deb/debian/ca-certificates@20230311?arch=all&distro=debian-12"),
		sbomComp("Debian", "libc6", "2.36-9+deb12u4", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"),
		sbomComp("Debian", "libssl3", "3.0.11-1~deb12u1", "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl"),
		sbomComp("Debian", "zlib1g", "1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib"),
		sbomComp("Go", "example.com/localdep", "1.2.3", "pkg:golang/example.com/localdep@v1.2.3"),
		sbomComp("Go", "github.com/ExampleOrg/Toml", "1.3.2", "pkg:golang/github.com/ExampleOrg/Toml@v1.3.2"),
		sbomComp("Go", "golang.org/x/sync", "0.24.0", "pkg:golang/golang.org/x/sync@v0.24.0"),
		sbomComp("Go", "golang.org/x/text", "0.3.5", "pkg:golang/golang.org/x/text@v0.3.5"),
		sbomComp("Go", "stdlib", "1.22.3", "pkg:golang/stdlib@go1.22.3"),
	}
	if !reflect.DeepEqual(s.Components, want) {
		t.Errorf("components:\n got %+v\nwant %+v", s.Components, want)
	}
	if wantNotes := []string{"1 entries without a package URL skipped"}; !reflect.DeepEqual(s.Notes, wantNotes) {
		t.Errorf("notes: %q", s.Notes)
	}
}

// TestCrossCheckFixtures inventories a tar.gz bundle holding the real Go
// program, a dpkg status file and a text file, and cross-checks it with
// both SBOM fixtures.
func TestCrossCheckFixtures(t *testing.T) {
	bundle := makeTar(t, true,
		entry{name: "usr/bin/app", body: readFile(t, testBinary(t, "", ""))},
		entry{name: "var/lib/dpkg/status", body: readFile(t, "testdata/dpkg/status")},
		entry{name: "etc/motd", body: []byte("hello\n")},
	)
	inv, err := inventoryOf(bundle, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := sortComponents(append(wantBinaryComponents(t, "usr/bin/app"), wantDpkgComponents("dpkg:var/lib/dpkg/status")...))
	if !reflect.DeepEqual(inv.Components, want) {
		t.Fatalf("inventory:\n got %+v\nwant %+v", inv.Components, want)
	}
	art := func(name string) vulnref.Component {
		for _, c := range inv.Components {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("%s not in the inventory", name)
		return vulnref.Component{}
	}
	std := wantStdlib(t)
	for _, tc := range []struct {
		file string
		want []vulnref.Disagreement
	}{
		{"testdata/cyclonedx.json", []vulnref.Disagreement{
			{Kind: vulnref.DisagreeMissingFromSBOM, Component: art("ca-certificates")},
			{Kind: vulnref.DisagreeNotInArtifact, Component: sbomComp("Debian", "curl", "7.88.1-10+deb12u5", "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12")},
			{Kind: vulnref.DisagreeVersion, Component: art("libc6"), SBOMVersion: "2.36-9+deb12u3"},
			{Kind: vulnref.DisagreeMissingFromSBOM, Component: art("example.com/localdep")},
			{Kind: vulnref.DisagreeNotInArtifact, Component: sbomComp("Go", "github.com/ExampleOrg/Toml", "1.3.2", "pkg:golang/github.com/ExampleOrg/Toml@v1.3.2")},
			{Kind: vulnref.DisagreeNotInArtifact, Component: sbomComp("Go", "github.com/example/logging", "1.9.3", "pkg:golang/github.com/example/logging@v1.9.3")},
			{Kind: vulnref.DisagreeVersion, Component: art("golang.org/x/sync"), SBOMVersion: "0.20.0"},
			{Kind: vulnref.DisagreeVersion, Component: art("stdlib"), SBOMVersion: "1.22.3"},
		}},
		{"testdata/spdx.json", []vulnref.Disagreement{
			{Kind: vulnref.DisagreeMissingFromSBOM, Component: art("busybox")},
			{Kind: vulnref.DisagreeVersion, Component: art("libssl3"), SBOMVersion: "3.0.11-1~deb12u1"},
			{Kind: vulnref.DisagreeNotInArtifact, Component: sbomComp("Go", "github.com/ExampleOrg/Toml", "1.3.2", "pkg:golang/github.com/ExampleOrg/Toml@v1.3.2")},
			{Kind: vulnref.DisagreeVersion, Component: art("stdlib"), SBOMVersion: "1.22.3"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if std == "1.22.3" {
				t.Skip("the toolchain is go1.22.3, which the fixtures name as the mismatching version")
			}
			s, err := ParseSBOM(readFile(t, tc.file), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got := CrossCheck(inv, s)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("disagreements:\n got %s\nwant %s", fmtDisagreements(got), fmtDisagreements(tc.want))
			}
		})
	}
}

func fmtDisagreements(ds []vulnref.Disagreement) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "\n  %s %s/%s@%s (%s) sbom=%s", d.Kind, d.Component.Ecosystem, d.Component.Name, d.Component.Version, d.Component.Location, d.SBOMVersion)
	}
	return b.String()
}

func TestSBOMStdlibForms(t *testing.T) {
	doc := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[
		{"type":"library","name":"stdlib","version":"go1.22.3","purl":"pkg:golang/stdlib@go1.22.3"},
		{"type":"library","name":"stdlib","version":"v1.22.3","purl":"pkg:golang/stdlib@v1.22.3"},
		{"type":"library","name":"go","version":"1.22.3","purl":"pkg:golang/go@1.22.3"},
		{"type":"library","name":"golang.org/toolchain","purl":"pkg:golang/golang.org/toolchain@v0.0.1-go1.22.3.linux-amd64"},
		{"type":"library","name":"stdlib","version":"go1.22.3"},
		{"type":"library","name":"stdlib","purl":"pkg:golang/stdlib@1.21rc2"},
		{"type":"library","name":"stdlib","purl":"pkg:golang/stdlib@go1.21rc2"},
		{"type":"library","name":"stdlib","purl":"pkg:golang/stdlib@devel"}
	]}`
	s, err := ParseSBOM([]byte(doc), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range s.Components {
		if c.Ecosystem != "Go" || c.Name != "stdlib" {
			t.Errorf("unexpected component %+v", c)
		}
		got = append(got, c.Version)
	}
	// Six entries give 1.22.3 (deduplicated by version and location, the
	// first PURL kept), one gives 1.21.0-rc.2; "1.21rc2" and "devel" are
	// not versions.
	if want := []string{"1.21.0-rc.2", "1.22.3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("versions = %q, want %q", got, want)
	}
	if !hasNote(s.Notes, "2 Go or Debian entries without a usable version") {
		t.Errorf("notes: %q", s.Notes)
	}
}

func TestParseSBOMNestedComponents(t *testing.T) {
	nested := func(depth int) []byte {
		var b strings.Builder
		b.WriteString(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[`)
		for i := range depth {
			fmt.Fprintf(&b, `{"type":"library","name":"m%d","purl":"pkg:golang/example.com/m%d@v1.0.%d","components":[`, i, i, i)
		}
		b.WriteString(strings.Repeat("]}", depth))
		b.WriteString("]}")
		return []byte(b.String())
	}
	s, err := ParseSBOM(nested(30), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Components) != 30 || s.Components[29].Name != "example.com/m9" {
		t.Errorf("%d components, last %+v", len(s.Components), s.Components[len(s.Components)-1])
	}
	if _, err := ParseSBOM(nested(40), Limits{}); !errors.Is(err, ErrLimit) {
		t.Errorf("40 levels: err = %v, want ErrLimit", err)
	}
}

func TestParseSBOMHostile(t *testing.T) {
	many := func(prefix, item, suffix string, n int) []byte {
		var b bytes.Buffer
		b.WriteString(prefix)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(item)
		}
		b.WriteString(suffix)
		return b.Bytes()
	}
	deep := []byte(`{"bomFormat":"CycloneDX","x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "}")
	for _, tc := range []struct {
		name  string
		data  []byte
		lim   Limits
		want  error
		limit string
	}{
		{"a million CycloneDX components", many(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[`, `{"type":"library","name":"x","purl":"pkg:golang/x@v1.0.0"}`, "]}", 1_000_000), Limits{}, ErrLimit, "MaxComponents"},
		{"a million SPDX packages", many(`{"spdxVersion":"SPDX-2.3","packages":[`, `{"name":"x","SPDXID":"SPDXRef-x"}`, "]}", 1_000_000), Limits{}, ErrLimit, "MaxComponents"},
		{"escaped key hiding components", many(`{"bomFormat":"CycloneDX","specVersion":"1.5","compon\u0065nts":[`, `{"name":"x"}`, "]}", 2000), Limits{MaxComponents: 1000}, ErrLimit, "MaxComponents"},
		{"many nodes elsewhere", many(`{"bomFormat":"CycloneDX","specVersion":"1.5","vulnerabilities":[`, `{}`, "]}", 5000), Limits{MaxSBOMNodes: 1000}, ErrLimit, "MaxSBOMNodes"},
		{"deep nesting", deep, Limits{}, ErrLimit, "maxSBOMDepth"},
		{"too large", make([]byte, 2048), Limits{MaxSBOMBytes: 1024}, ErrLimit, "MaxSBOMBytes"},
		{"components of the wrong type", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":"all of them"}`), Limits{}, ErrSBOM, ""},
		{"component of the wrong type", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[1,2,3]}`), Limits{}, ErrSBOM, ""},
		{"purl of the wrong type", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"name":"x","purl":{"a":1}}]}`), Limits{}, ErrSBOM, ""},
		{"unknown spec version", []byte(`{"bomFormat":"CycloneDX","specVersion":"9.9"}`), Limits{}, ErrSBOM, ""},
		{"SPDX packages of the wrong type", []byte(`{"spdxVersion":"SPDX-2.3","packages":{"name":"x"}}`), Limits{}, ErrSBOM, ""},
		{"unsupported SPDX version", []byte(`{"spdxVersion":"SPDX-9.9","packages":[]}`), Limits{}, ErrSBOM, ""},
		{"other bomFormat", []byte(`{"bomFormat":"Other","components":[]}`), Limits{}, ErrSBOM, ""},
		{"both formats", []byte(`{"bomFormat":"CycloneDX","spdxVersion":"SPDX-2.3"}`), Limits{}, ErrSBOM, ""},
		{"no format", []byte(`{"components":[]}`), Limits{}, ErrSBOM, ""},
		{"not JSON", []byte("this is not an SBOM"), Limits{}, ErrSBOM, ""},
		{"JSON array", []byte(`[{"bomFormat":"CycloneDX"}]`), Limits{}, ErrSBOM, ""},
		{"JSON string", []byte(`"CycloneDX"`), Limits{}, ErrSBOM, ""},
		{"truncated", readFile(t, "testdata/cyclonedx.json")[:1000], Limits{}, ErrSBOM, ""},
		{"trailing document", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"} {}`), Limits{}, ErrSBOM, ""},
		{"trailing garbage", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"} x`), Limits{}, ErrSBOM, ""},
		{"XML", []byte(`<?xml version="1.0" encoding="UTF-8"?><bom xmlns="http://cyclonedx.org/schema/bom/1.5"><components/></bom>`), Limits{}, ErrSBOM, ""},
		{"tag-value", []byte("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n"), Limits{}, ErrSBOM, ""},
		{"empty", nil, Limits{}, ErrSBOM, ""},
		{"negative limit", []byte(`{}`), Limits{MaxSBOMBytes: -1}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSBOM(tc.data, tc.lim)
			if err == nil {
				t.Fatalf("accepted: %+v", s)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var le *LimitError
			if tc.limit != "" && (!errors.As(err, &le) || le.Limit != tc.limit) {
				t.Errorf("err = %v, want the %s limit", err, tc.limit)
			}
		})
	}
}

func TestParseSBOMTolerated(t *testing.T) {
	// A byte order mark, a huge number, a bad purl and an empty component
	// list are read without error.
	doc := "\xef\xbb\xbf" + `{"bomFormat":"CycloneDX","specVersion":"1.4","version":1e999,"components":[
		{"type":"library","name":"a","purl":"not a purl"},
		{"type":"library","name":"b","purl":"pkg:deb/debian/b"},
		{"type":"library","name":"c","version":"2.0","purl":"pkg:deb/debian/c"}
	]}`
	_, err := ParseSBOM([]byte(doc), Limits{})
	// The CycloneDX "version" is an int: 1e999 is a decode error, reported.
	if !errors.Is(err, ErrSBOM) {
		t.Errorf("err = %v, want ErrSBOM", err)
	}
	// Brackets and escaped quotes inside strings are not structure.
	doc = strings.Replace(doc, "1e999", "1", 1)
	doc = strings.Replace(doc, `"name":"a"`, `"name":"[{\"[{\\","serialNumber":"urn:uuid:]}]}"`, 1)
	s, err := ParseSBOM([]byte(doc), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []vulnref.Component{sbomComp("Debian", "c", "2.0", "pkg:deb/debian/c")}
	if !reflect.DeepEqual(s.Components, want) {
		t.Errorf("components: %+v", s.Components)
	}
	if !hasNote(s.Notes, "1 entries with an invalid package URL") || !hasNote(s.Notes, "1 Go or Debian entries without a usable version") {
		t.Errorf("notes: %q", s.Notes)
	}
}
