package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"

	"github.com/ztota/ztota/internal/vulnref"
)

// SBOM formats reported in [SBOM.Format].
const (
	FormatCycloneDXJSON = "cyclonedx-json"
	FormatSPDXJSON      = "spdx-json"
)

// LocationSBOM is the location of every component read from an SBOM.
const LocationSBOM = "sbom"

// SBOM is the software an SBOM claims, in the same terms as [Inventory].
type SBOM struct {
	// Format is FormatCycloneDXJSON or FormatSPDXJSON.
	Format string `json:"format"`
	// Components are sorted and deduplicated like [Inventory.Components];
	// their Location is LocationSBOM and their PURL the SBOM's own.
	Components []vulnref.Component `json:"components"`
	// Notes say which entries were not read, e.g. components without a
	// package URL or of an ecosystem the artifact inventory does not cover.
	Notes []string `json:"notes,omitempty"`
}

// ParseSBOM reads a CycloneDX JSON or SPDX 2.x JSON document, detected
// from its content ("bomFormat": "CycloneDX" or "spdxVersion"). XML,
// tag-value and other documents are refused with an error wrapping
// [ErrSBOM]. Before the document is decoded, a streaming scan bounds its
// size (MaxSBOMBytes), nesting (64 levels), JSON objects and arrays
// (MaxSBOMNodes) and components or packages (MaxComponents).
//
// Components are read from package URLs: pkg:golang becomes ecosystem
// "Go" with the "v" of the version removed, the Go standard library
// (pkg:golang/stdlib, pkg:golang/go, golang.org/toolchain, at versions
// such as "go1.22.3", "v1.22.3" or "1.22.3") becomes "stdlib" at "1.22.3",
// and pkg:deb becomes "Debian" with the binary package name. Entries
// without a package URL, at no version or "(devel)", or of other purl
// types are skipped and counted in Notes.
func ParseSBOM(data []byte, lim Limits) (*SBOM, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > lim.MaxSBOMBytes {
		return nil, &LimitError{Limit: "MaxSBOMBytes", Max: lim.MaxSBOMBytes}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("%w: the document is empty", ErrSBOM)
	case trimmed[0] == '<':
		return nil, fmt.Errorf("%w: XML documents are not supported", ErrSBOM)
	case bytes.HasPrefix(trimmed, []byte("SPDXVersion:")):
		return nil, fmt.Errorf("%w: SPDX tag-value documents are not supported", ErrSBOM)
	case trimmed[0] != '{':
		return nil, fmt.Errorf("%w: the document is not a JSON object", ErrSBOM)
	}
	info, err := scanSBOM(data, lim)
	if err != nil {
		return nil, err
	}
	s := &sbomBuilder{lim: lim}
	switch {
	case info.bomFormat != "" && info.spdxVersion != "":
		return nil, fmt.Errorf("%w: the document has both bomFormat and spdxVersion", ErrSBOM)
	case info.bomFormat == "CycloneDX":
		s.format = FormatCycloneDXJSON
		err = s.cycloneDX(data)
	case info.bomFormat != "":
		return nil, fmt.Errorf("%w: bomFormat %s is not CycloneDX", ErrSBOM, quote(info.bomFormat))
	case info.spdxVersion != "":
		s.format = FormatSPDXJSON
		err = s.spdx(data)
	default:
		return nil, fmt.Errorf("%w: neither a CycloneDX (bomFormat) nor an SPDX (spdxVersion) document", ErrSBOM)
	}
	if err != nil {
		return nil, err
	}
	return s.finish(), nil
}

// sbomInfo is what the scan learns about a document.
type sbomInfo struct {
	bomFormat, spdxVersion string
}

// scanSBOM checks that data is one well-formed JSON object, enforcing the
// bounds of ParseSBOM, and returns the top-level fields that name the
// format. The bounds are checked by a byte-level pass that allocates only
// object keys, and runs before anything else reads the input, malformed
// or not; json.Valid then checks the syntax.
func scanSBOM(data []byte, lim Limits) (sbomInfo, error) {
	type frame struct {
		array   bool
		list    bool // an array of SBOM entries
		wantKey bool // for an object, the next string is a key
	}
	var (
		info       sbomInfo
		stack      []frame
		nodes      int
		components int
		key        string // the last key read in the current object
	)
	malformed := fmt.Errorf("%w: not valid JSON", ErrSBOM)
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case ' ', '\t', '\r', '\n', ':':
		case ',':
			if n := len(stack); n > 0 && !stack[n-1].array {
				stack[n-1].wantKey = true
			}
		case '{', '[':
			nodes++
			if nodes > lim.MaxSBOMNodes {
				return info, &LimitError{Limit: "MaxSBOMNodes", Max: int64(lim.MaxSBOMNodes)}
			}
			if len(stack) >= maxSBOMDepth {
				return info, &LimitError{Limit: "maxSBOMDepth", Max: maxSBOMDepth}
			}
			if len(stack) == 0 && (c != '{' || nodes > 1) {
				return info, fmt.Errorf("%w: the document is not one JSON object", ErrSBOM)
			}
			list := false
			if n := len(stack); n > 0 {
				top := stack[n-1]
				if c == '{' && top.list {
					components++
					if components > lim.MaxComponents {
						return info, &LimitError{Limit: "MaxComponents", Max: int64(lim.MaxComponents)}
					}
				}
				list = c == '[' && !top.array && isComponentList(key, n+1)
			}
			stack = append(stack, frame{array: c == '[', list: list, wantKey: c == '{'})
		case '}', ']':
			n := len(stack)
			if n == 0 || stack[n-1].array != (c == ']') {
				return info, malformed
			}
			stack = stack[:n-1]
		case '"':
			end, ok := stringEnd(data, i)
			if !ok {
				return info, malformed
			}
			raw := data[i : end+1]
			i = end
			n := len(stack)
			if n == 0 {
				return info, fmt.Errorf("%w: the document is not a JSON object", ErrSBOM)
			}
			top := &stack[n-1]
			if !top.array && top.wantKey {
				top.wantKey = false
				key = unquote(raw)
				continue
			}
			if n == 1 && (key == "bomFormat" || key == "spdxVersion") {
				v := unquote(raw)
				if key == "bomFormat" {
					info.bomFormat = v
				} else {
					info.spdxVersion = v
				}
			}
		default:
			// A number, true, false or null: skip to its end.
			for i+1 < len(data) && !strings.ContainsRune(",:{}[]\" \t\r\n", rune(data[i+1])) {
				i++
			}
			if len(stack) == 0 {
				return info, fmt.Errorf("%w: the document is not a JSON object", ErrSBOM)
			}
		}
	}
	if !json.Valid(data) {
		var v struct{}
		if err := json.Unmarshal(data, &v); err != nil {
			return info, fmt.Errorf("%w: not valid JSON: %v", ErrSBOM, err)
		}
		return info, malformed
	}
	return info, nil
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at data[start].
func stringEnd(data []byte, start int) (int, bool) {
	for i := start + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i, true
		}
	}
	return 0, false
}

// unquote decodes a JSON string literal, or returns "" if it is invalid.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// isComponentList reports whether an array held by key at the given
// depth lists SBOM entries: CycloneDX "components" at any depth, SPDX
// top-level "packages".
func isComponentList(key string, depth int) bool {
	return key == "components" || (key == "packages" && depth == 2)
}

// sbomBuilder gathers the components of one SBOM.
type sbomBuilder struct {
	lim     Limits
	format  string
	comps   []vulnref.Component
	notes   []string
	noPURL  int
	noVer   int
	badPURL int
	other   map[string]int // purl type -> entries skipped
}

// cycloneDX decodes a CycloneDX JSON document with cyclonedx-go and reads
// the metadata component and all components, recursively.
func (s *sbomBuilder) cycloneDX(data []byte) (err error) {
	defer recoverDecoder("CycloneDX", &err)
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return fmt.Errorf("%w: CycloneDX: %v", ErrSBOM, err)
	}
	if bom.Metadata != nil && bom.Metadata.Component != nil {
		s.cdxComponent(bom.Metadata.Component)
	}
	if bom.Components != nil {
		for i := range *bom.Components {
			s.cdxComponent(&(*bom.Components)[i])
		}
	}
	return nil
}

func (s *sbomBuilder) cdxComponent(c *cdx.Component) {
	s.purl(c.PackageURL, c.Name, c.Version)
	if c.Components != nil {
		for i := range *c.Components {
			s.cdxComponent(&(*c.Components)[i])
		}
	}
}

// spdx decodes an SPDX 2.1, 2.2 or 2.3 JSON document with tools-golang
// and reads each package's purl external references.
func (s *sbomBuilder) spdx(data []byte) (err error) {
	defer recoverDecoder("SPDX", &err)
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: SPDX: %v", ErrSBOM, err)
	}
	for _, p := range doc.Packages {
		if p == nil {
			continue
		}
		var purls []string
		for _, ref := range p.PackageExternalReferences {
			if ref != nil && strings.EqualFold(ref.RefType, spdx.PackageManagerPURL) {
				purls = append(purls, ref.Locator)
			}
		}
		if len(purls) == 0 {
			s.purl("", p.PackageName, p.PackageVersion)
		}
		for _, u := range purls {
			s.purl(u, p.PackageName, p.PackageVersion)
		}
	}
	return nil
}

// recoverDecoder turns a panic in a third-party decoder into an error.
func recoverDecoder(what string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s decoder failed: %v", ErrSBOM, what, p)
	}
}

// purl adds the component a package URL names. name and version are the
// entry's own fields, used for the version when the purl has none and for
// the case of a Go module path.
func (s *sbomBuilder) purl(raw, name, version string) {
	if raw == "" {
		if v, ok := stdlibWithoutPURL(name, version); ok {
			s.addComp(goComponent(StdlibName, v, LocationSBOM))
			return
		}
		s.noPURL++
		return
	}
	p, err := packageurl.FromString(raw)
	if err != nil {
		s.badPURL++
		return
	}
	v := p.Version
	if v == "" {
		v = version
	}
	var comp vulnref.Component
	switch p.Type {
	case packageurl.TypeGolang:
		path := goPathFromPURL(raw, p)
		if path == "" {
			s.badPURL++
			return
		}
		if isStdlibPath(path) {
			if path == "golang.org/toolchain" {
				v = toolchainGoVersion(v)
			}
			sv, ok := normalizeStdlibVersion(v)
			if !ok {
				s.noVer++
				return
			}
			comp = goComponent(StdlibName, sv, LocationSBOM)
		} else {
			if v == "" || v == develVersion {
				s.noVer++
				return
			}
			comp = goComponent(path, trimV(v), LocationSBOM)
		}
	case packageurl.TypeDebian:
		if v == "" {
			s.noVer++
			return
		}
		comp = vulnref.Component{Ecosystem: EcosystemDebian, Name: p.Name, Version: v}
	default:
		if s.other == nil {
			s.other = map[string]int{}
		}
		if len(s.other) < maxNotes || s.other[p.Type] > 0 {
			s.other[p.Type]++
		}
		return
	}
	comp.PURL = raw
	comp.Location = LocationSBOM
	s.addComp(comp)
}

func (s *sbomBuilder) addComp(c vulnref.Component) {
	// The scan bounded the entries; each gives at most one component per
	// purl, and SPDX packages carry a bounded number of references.
	s.comps = append(s.comps, c)
}

func (s *sbomBuilder) finish() *SBOM {
	note := func(n int, what string) {
		if n > 0 {
			s.notes = append(s.notes, fmt.Sprintf("%d %s", n, what))
		}
	}
	note(s.noPURL, "entries without a package URL skipped")
	note(s.badPURL, "entries with an invalid package URL skipped")
	note(s.noVer, "Go or Debian entries without a usable version skipped")
	types := make([]string, 0, len(s.other))
	for t := range s.other {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if len(s.notes) >= maxNotes {
			break
		}
		s.notes = append(s.notes, fmt.Sprintf("%d entries of purl type %s not compared (the artifact inventory covers Go and Debian)", s.other[t], quote(t)))
	}
	comps := sortComponents(s.comps)
	if comps == nil {
		comps = []vulnref.Component{}
	}
	return &SBOM{Format: s.format, Components: comps, Notes: s.notes}
}

// isStdlibPath reports whether a Go purl path names the Go toolchain.
func isStdlibPath(path string) bool {
	return path == StdlibName || path == "go" || path == "golang.org/toolchain"
}

// stdlibWithoutPURL recognizes a standard library entry that carries no
// package URL: named "stdlib" or "go" at a version like "go1.22.3".
func stdlibWithoutPURL(name, version string) (string, bool) {
	if (name != StdlibName && name != "go") || !strings.HasPrefix(version, "go1") {
		return "", false
	}
	return StdlibVersion(version)
}

// toolchainGoVersion extracts the Go version from a golang.org/toolchain
// module version such as "v0.0.1-go1.22.3.linux-amd64".
func toolchainGoVersion(v string) string {
	_, rest, ok := strings.Cut(v, "-go")
	if !ok {
		return v
	}
	// rest is "1.22.3.linux-amd64": drop ".GOOS-GOARCH".
	if i := strings.LastIndexByte(rest, '.'); i >= 0 && strings.Contains(rest[i:], "-") {
		rest = rest[:i]
	}
	return "go" + rest
}

// goPathFromPURL returns the module path of a pkg:golang URL in its
// original case: packageurl-go lowercases golang namespaces and names, but
// Go module paths are case-sensitive. It returns "" if the raw text does
// not spell the parsed path.
func goPathFromPURL(raw string, p packageurl.PackageURL) string {
	parsed := p.Name
	if p.Namespace != "" {
		parsed = p.Namespace + "/" + p.Name
	}
	s := raw[len("pkg:"):]
	s = strings.TrimLeft(s, "/")
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	_, s, _ = strings.Cut(s, "/") // drop the type
	var parts []string
	for _, seg := range strings.Split(s, "/") {
		if seg == "" {
			continue
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return parsed
		}
		parts = append(parts, dec)
	}
	path := strings.Join(parts, "/")
	if !strings.EqualFold(path, parsed) {
		return parsed
	}
	return path
}
