package inventory

import (
	"cmp"
	"slices"

	"github.com/ztota/ztota/internal/vulnref"
)

// CrossCheck compares an SBOM with the artifact's own inventory, by
// (ecosystem, name). The artifact's inventory wins: disagreements say
// where the SBOM is wrong, never correct the inventory.
//
// For each (ecosystem, name), the versions found only in the artifact and
// those claimed only by the SBOM are paired in sorted order into
// DisagreeVersion entries (Component from the artifact, SBOMVersion from
// the SBOM); artifact versions left over are DisagreeMissingFromSBOM and
// SBOM versions left over are DisagreeNotInArtifact (Component from the
// SBOM). A version found at several locations gives one disagreement,
// naming the first location. The result is sorted by ecosystem, name,
// version, kind, SBOM version and location. Nil arguments count as empty.
func CrossCheck(inv *Inventory, sbom *SBOM) []vulnref.Disagreement {
	art := groupVersions(inv.components())
	claimed := groupVersions(sbom.components())
	var out []vulnref.Disagreement
	for key, av := range art {
		sv := claimed[key]
		onlyArt := subtract(av, sv)
		onlySBOM := subtract(sv, av)
		n := min(len(onlyArt), len(onlySBOM))
		for i := range n {
			out = append(out, vulnref.Disagreement{Kind: vulnref.DisagreeVersion, Component: onlyArt[i], SBOMVersion: onlySBOM[i].Version})
		}
		for _, c := range onlyArt[n:] {
			out = append(out, vulnref.Disagreement{Kind: vulnref.DisagreeMissingFromSBOM, Component: c})
		}
		for _, c := range onlySBOM[n:] {
			out = append(out, vulnref.Disagreement{Kind: vulnref.DisagreeNotInArtifact, Component: c})
		}
	}
	for key, sv := range claimed {
		if _, ok := art[key]; ok {
			continue
		}
		for _, c := range sv {
			out = append(out, vulnref.Disagreement{Kind: vulnref.DisagreeNotInArtifact, Component: c})
		}
	}
	slices.SortFunc(out, func(a, b vulnref.Disagreement) int {
		return cmp.Or(
			cmp.Compare(a.Component.Ecosystem, b.Component.Ecosystem),
			cmp.Compare(a.Component.Name, b.Component.Name),
			cmp.Compare(a.Component.Version, b.Component.Version),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.SBOMVersion, b.SBOMVersion),
			cmp.Compare(a.Component.Location, b.Component.Location),
		)
	})
	return out
}

func (inv *Inventory) components() []vulnref.Component {
	if inv == nil {
		return nil
	}
	return inv.Components
}

func (s *SBOM) components() []vulnref.Component {
	if s == nil {
		return nil
	}
	return s.Components
}

// groupVersions maps each (ecosystem, name) to one component per version,
// sorted by version; of several components at one version, the one first
// in component order is kept.
func groupVersions(cs []vulnref.Component) map[vulnref.Key][]vulnref.Component {
	sorted := slices.Clone(cs)
	slices.SortFunc(sorted, compareComponents)
	m := map[vulnref.Key][]vulnref.Component{}
	for _, c := range sorted {
		k := c.Key()
		vs := m[k]
		if len(vs) > 0 && vs[len(vs)-1].Version == c.Version {
			continue
		}
		m[k] = append(vs, c)
	}
	return m
}

// subtract returns the components of a whose version is not in b; both
// are sorted by version, and so is the result.
func subtract(a, b []vulnref.Component) []vulnref.Component {
	in := make(map[string]bool, len(b))
	for _, d := range b {
		in[d.Version] = true
	}
	var out []vulnref.Component
	for _, c := range a {
		if !in[c.Version] {
			out = append(out, c)
		}
	}
	return out
}
