package inventory

import (
	"reflect"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func TestCrossCheckPairing(t *testing.T) {
	a := func(name, version, loc string) vulnref.Component {
		return vulnref.Component{Ecosystem: "Go", Name: name, Version: version, Location: loc}
	}
	s := func(name, version string) vulnref.Component {
		return vulnref.Component{Ecosystem: "Go", Name: name, Version: version, Location: LocationSBOM}
	}
	inv := &Inventory{Kind: KindTar, Components: sortComponents([]vulnref.Component{
		a("m", "1.0.0", "bin/a"), a("m", "1.0.0", "bin/b"), // one version at two locations
		a("m", "2.0.0", "bin/c"), a("m", "3.0.0", "bin/d"),
		a("same", "1.0.0", "bin/a"),
		{Ecosystem: "Debian", Name: "same", Version: "1.0.0", Location: "dpkg:."},
	})}
	sbom := &SBOM{Format: FormatCycloneDXJSON, Components: []vulnref.Component{
		s("m", "1.0.0"), s("m", "2.5.0"),
		s("same", "1.0.0"),
		s("extra", "0.1.0"), s("extra", "0.2.0"),
	}}
	got := CrossCheck(inv, sbom)
	want := []vulnref.Disagreement{
		// The Debian package of the same name is a different key.
		{Kind: vulnref.DisagreeMissingFromSBOM, Component: vulnref.Component{Ecosystem: "Debian", Name: "same", Version: "1.0.0", Location: "dpkg:."}},
		{Kind: vulnref.DisagreeNotInArtifact, Component: s("extra", "0.1.0")},
		{Kind: vulnref.DisagreeNotInArtifact, Component: s("extra", "0.2.0")},
		// Artifact versions 2.0.0 and 3.0.0 against SBOM 2.5.0: the first
		// pair is a mismatch, the rest is missing from the SBOM.
		{Kind: vulnref.DisagreeVersion, Component: a("m", "2.0.0", "bin/c"), SBOMVersion: "2.5.0"},
		{Kind: vulnref.DisagreeMissingFromSBOM, Component: a("m", "3.0.0", "bin/d")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("disagreements:%s\nwant:%s", fmtDisagreements(got), fmtDisagreements(want))
	}
	// The other way round, SBOM versions left over are not in the artifact.
	inv2 := &Inventory{Components: []vulnref.Component{a("m", "1.0.0", "x")}}
	sbom2 := &SBOM{Components: []vulnref.Component{s("m", "0.9.0"), s("m", "1.1.0")}}
	want2 := []vulnref.Disagreement{
		{Kind: vulnref.DisagreeVersion, Component: a("m", "1.0.0", "x"), SBOMVersion: "0.9.0"},
		{Kind: vulnref.DisagreeNotInArtifact, Component: s("m", "1.1.0")},
	}
	if got := CrossCheck(inv2, sbom2); !reflect.DeepEqual(got, want2) {
		t.Errorf("disagreements:%s\nwant:%s", fmtDisagreements(got), fmtDisagreements(want2))
	}
	if got := CrossCheck(inv, &SBOM{Components: inv.Components}); len(got) != 0 {
		t.Errorf("an SBOM equal to the inventory disagrees: %s", fmtDisagreements(got))
	}
	if got := CrossCheck(nil, nil); len(got) != 0 {
		t.Errorf("nil arguments: %v", got)
	}
	if got := CrossCheck(inv2, nil); len(got) != 1 || got[0].Kind != vulnref.DisagreeMissingFromSBOM {
		t.Errorf("nil SBOM: %v", got)
	}
}

// TestCrossCheckDeterministic checks the order does not depend on map
// iteration.
func TestCrossCheckDeterministic(t *testing.T) {
	var ac, sc []vulnref.Component
	for i := range 50 {
		name := string(rune('a'+i%26)) + string(rune('a'+i/26))
		ac = append(ac, vulnref.Component{Ecosystem: "Go", Name: name, Version: "1", Location: "x"})
		if i%3 != 0 {
			sc = append(sc, vulnref.Component{Ecosystem: "Go", Name: name, Version: []string{"1", "2"}[i%2], Location: LocationSBOM})
		}
		sc = append(sc, vulnref.Component{Ecosystem: "Debian", Name: name, Version: "1", Location: LocationSBOM})
	}
	first := CrossCheck(&Inventory{Components: ac}, &SBOM{Components: sc})
	for range 20 {
		if got := CrossCheck(&Inventory{Components: ac}, &SBOM{Components: sc}); !reflect.DeepEqual(got, first) {
			t.Fatal("CrossCheck order changed between runs")
		}
	}
	// 50 Debian entries not in the artifact, 17 Go modules (i%3 == 0)
	// missing from the SBOM, 17 (odd i, i%3 != 0) at another version.
	if len(first) != 50+17+17 {
		t.Errorf("%d disagreements", len(first))
	}
}
