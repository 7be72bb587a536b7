// Package vulnref holds the small value types that the certification
// service's parts share: a software component found in an artifact, a
// vulnerability finding against it, and a disagreement between an
// artifact's own inventory and the SBOM supplied with it.
package vulnref

// Component is one piece of software found in an artifact.
//
// Ecosystem and Name are as OSV writes them ("Go" with a module path or
// "stdlib"; "Debian" with a source or binary package name). Version is in
// the form the ecosystem's OSV records use: Go module versions without the
// leading "v" (so "0.3.7", "0.0.0-20210226172049-e18ecbb05110"), the Go
// toolchain as "stdlib" with "1.22.3".
type Component struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// PURL is the package URL of the component, when known.
	PURL string `json:"purl,omitempty"`
	// Location says where in the artifact the component was found (a path
	// inside a bundle, "dpkg:var/lib/dpkg/status", "sbom", ...).
	Location string `json:"location,omitempty"`
	// GOOS and GOARCH are the target platform of the Go binary the
	// component was linked into, when known. Go advisories whose affected
	// packages are all limited to other platforms do not match it (as
	// govulncheck decides).
	GOOS   string `json:"goos,omitempty"`
	GOARCH string `json:"goarch,omitempty"`
}

// Key is a component's identity without its version.
type Key struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
}

// Key returns the component's ecosystem and name.
func (c Component) Key() Key { return Key{Ecosystem: c.Ecosystem, Name: c.Name} }

// Severity levels, from the most to the least serious. Unknown is used when
// a record carries no severity the verifier can read (the Go vulnerability
// database gives none).
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityModerate = "MODERATE"
	SeverityLow      = "LOW"
	SeverityUnknown  = "UNKNOWN"
)

// Finding is one vulnerability advisory that affects one component.
type Finding struct {
	// ID is the advisory id (e.g. "GO-2022-0969"); Aliases its other ids
	// (CVE, GHSA).
	ID        string   `json:"id"`
	Aliases   []string `json:"aliases,omitempty"`
	Ecosystem string   `json:"ecosystem"`
	Package   string   `json:"package"`
	Version   string   `json:"version"`
	// Fixed is the lowest fixed version above Version, or "" if none is known.
	Fixed    string `json:"fixed,omitempty"`
	Severity string `json:"severity"`
	// Score is the CVSS base score, 0 when unknown.
	Score   float64 `json:"score,omitempty"`
	Summary string  `json:"summary,omitempty"`
	// Level is LevelPresent or LevelModuleOnly; "" (older results) means
	// present. Symbols are the vulnerable symbols found in the binary
	// ("golang.org/x/net/html.Parse"; a package path alone when the
	// advisory names the whole package), and LevelNote says why a finding
	// is present without a symbol (no symbol data in the advisory, or no
	// readable function table).
	Level     string   `json:"level,omitempty"`
	Symbols   []string `json:"symbols,omitempty"`
	LevelNote string   `json:"level_note,omitempty"`

	// Filled by policy evaluation.
	// Blocking is true when the finding makes the verdict fail.
	Blocking bool `json:"blocking"`
	// Exempted is true when a VEX statement in the policy says the artifact
	// is not affected; Justification is that statement's justification.
	Exempted      bool   `json:"exempted,omitempty"`
	Justification string `json:"justification,omitempty"`
}

// Disagreement kinds between an SBOM and the artifact's own inventory.
const (
	// DisagreeMissingFromSBOM: the artifact holds a component the SBOM omits.
	DisagreeMissingFromSBOM = "missing-from-sbom"
	// DisagreeNotInArtifact: the SBOM lists a component the artifact lacks.
	DisagreeNotInArtifact = "not-in-artifact"
	// DisagreeVersion: both list the component, with different versions.
	DisagreeVersion = "version-mismatch"
)

// Disagreement records one difference between a supplied SBOM and the
// inventory taken from the artifact itself. The artifact's inventory wins.
type Disagreement struct {
	Kind      string    `json:"kind"`
	Component Component `json:"component"`
	// SBOMVersion is the version the SBOM claims, for version mismatches.
	SBOMVersion string `json:"sbom_version,omitempty"`
}

// Symbols lists the functions linked into one Go binary, inlined ones
// included, by package import path ("golang.org/x/net/html", "net/http")
// and symbol as OSV's ecosystem_specific.imports[].symbols name them
// ("Parse", "Tokenizer.Next").
type Symbols struct {
	Packages map[string]map[string]struct{}
}

// HasPackage reports whether any function of package pkg is linked in.
func (s *Symbols) HasPackage(pkg string) bool { return len(s.Packages[pkg]) > 0 }

// Has reports whether symbol sym of package pkg is linked in.
func (s *Symbols) Has(pkg, sym string) bool {
	_, ok := s.Packages[pkg][sym]
	return ok
}

// Count is the number of (package, symbol) pairs.
func (s *Symbols) Count() int {
	n := 0
	for _, m := range s.Packages {
		n += len(m)
	}
	return n
}

// MaxFindingSymbols bounds Finding.Symbols; a finding with more vulnerable
// symbols present lists the first ones (sorted).
const MaxFindingSymbols = 1000

// Finding levels for Go components (Finding.Level).
const (
	// LevelPresent: a vulnerable symbol of an affected package is linked
	// into the binary, or the verifier cannot tell (the advisory names no
	// symbols, or the binary's function table cannot be read).
	LevelPresent = "present"
	// LevelModuleOnly: the module version is affected, but none of the
	// advisory's vulnerable symbols is in the binary.
	LevelModuleOnly = "module-only"
)
