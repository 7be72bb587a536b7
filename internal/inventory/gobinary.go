package inventory

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/package-url/packageurl-go"
	"golang.org/x/mod/semver"

	"github.com/ztota/ztota/internal/vulnref"
)

// Ecosystem names, as OSV writes them.
const (
	EcosystemGo     = "Go"
	EcosystemDebian = "Debian"
)

// StdlibName is the component name of the Go toolchain's standard library.
const StdlibName = "stdlib"

// develVersion is the version Go stamps on a module built from a work tree.
const develVersion = "(devel)"

// isExecutable reports whether b starts with the magic of an ELF, Mach-O
// (32 or 64 bit, either byte order) or PE executable.
func isExecutable(b []byte) bool {
	for _, m := range [][]byte{
		{0x7f, 'E', 'L', 'F'},
		{0xfe, 0xed, 0xfa, 0xce}, {0xce, 0xfa, 0xed, 0xfe},
		{0xfe, 0xed, 0xfa, 0xcf}, {0xcf, 0xfa, 0xed, 0xfe},
		{'M', 'Z'},
	} {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return false
}

// execMagicLen is how many bytes isExecutable needs to decide.
const execMagicLen = 4

// errNoBuildInfo is returned by goBinary for an executable without
// readable Go build information.
var errNoBuildInfo = errors.New("the executable has no readable Go build info (not a Go binary, or a damaged or packed one)")

// goBinary adds the components of the Go executable in r, found at loc.
// It returns an error wrapping errNoBuildInfo if r is not a Go executable
// with readable build information, or a LimitError.
func (c *collector) goBinary(r io.ReaderAt, loc string) error {
	bi, err := readBuildInfo(r)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoBuildInfo, err)
	}
	var goos, goarch string
	for _, st := range bi.Settings {
		switch st.Key {
		case "GOOS":
			goos = st.Value
		case "GOARCH":
			goarch = st.Value
		}
	}
	goComponent := func(path, version, loc string) vulnref.Component {
		x := goComponent(path, version, loc)
		x.GOOS, x.GOARCH = goos, goarch
		return x
	}
	if err := c.goSymbols(r, bi, loc); err != nil {
		return err
	}
	if v, ok := StdlibVersion(bi.GoVersion); ok {
		if err := c.add(goComponent(StdlibName, v, loc)); err != nil {
			return err
		}
	} else {
		c.note("%s: Go toolchain version %s not understood; stdlib not listed", loc, quote(bi.GoVersion))
	}
	if bi.Main.Path == "" && len(bi.Deps) == 0 {
		c.note("%s: Go binary without module info", loc)
		return nil
	}
	if bi.Main.Path != "" {
		if v := bi.Main.Version; v != "" && v != develVersion {
			if err := c.add(goComponent(bi.Main.Path, trimV(v), loc)); err != nil {
				return err
			}
		} else {
			c.note("%s: main module %s has no release version (%s); not listed", loc, quote(bi.Main.Path), quote(v))
		}
	}
	for _, d := range bi.Deps {
		if d == nil {
			continue
		}
		path, version := d.Path, d.Version
		if rep := d.Replace; rep != nil {
			if isLocalReplacement(rep) {
				c.note("%s: module %s is replaced by local directory %s; listed at its required version %s", loc, quote(d.Path), quote(rep.Path), quote(d.Version))
			} else {
				path, version = rep.Path, rep.Version
			}
		}
		if path == "" || version == "" || version == develVersion {
			c.note("%s: dependency %s has no version; not listed", loc, quote(path))
			continue
		}
		if err := c.add(goComponent(path, trimV(version), loc)); err != nil {
			return err
		}
	}
	return nil
}

// goSymbols reads the functions linked into the binary for
// symbol-level matching and files them under loc. A binary without a
// usable table is noted (its findings all count as present); a corrupt or
// hostile table is refused with an error wrapping ErrMalformed and
// ErrSymbolTable.
func (c *collector) goSymbols(r io.ReaderAt, bi *debug.BuildInfo, loc string) error {
	syms, err := readGoSymbols(r, bi)
	var none errNoSymbolInfo
	switch {
	case errors.As(err, &none):
		c.note("%s: %s; every finding of this binary counts as present", loc, none.why)
		return nil
	case err != nil:
		return fmt.Errorf("%w: %s: %w", ErrMalformed, loc, err)
	}
	n := syms.Count()
	if c.symbolCount+n > maxInventorySymbols {
		c.note("%s: the artifact's Go binaries hold more than %d symbols in all; this one is not read at symbol level and every finding of it counts as present", loc, maxInventorySymbols)
		return nil
	}
	c.symbolCount += n
	aliasReplacedPackages(syms, bi)
	if c.symbols == nil {
		c.symbols = map[string]*vulnref.Symbols{}
	}
	c.symbols[loc] = syms
	return nil
}

// maxInventorySymbols is MaxInventorySymbols; tests lower it.
var maxInventorySymbols = MaxInventorySymbols

// aliasReplacedPackages files the packages of a module replaced by a
// module of another path under the replacement's path too: the binary
// names them by the import path the code used, while the component (and
// so the advisories matched) is the replacement module.
func aliasReplacedPackages(syms *vulnref.Symbols, bi *debug.BuildInfo) {
	for _, d := range bi.Deps {
		if d == nil || d.Replace == nil || isLocalReplacement(d.Replace) || d.Replace.Path == d.Path || d.Path == "" {
			continue
		}
		from, to := d.Path, d.Replace.Path
		for pkg, m := range syms.Packages {
			if pkg != from && !strings.HasPrefix(pkg, from+"/") {
				continue
			}
			alias := to + strings.TrimPrefix(pkg, from)
			if _, exists := syms.Packages[alias]; !exists {
				syms.Packages[alias] = m
			}
		}
	}
}

// readBuildInfo runs debug/buildinfo, turning a panic on a hostile
// executable into an error.
func readBuildInfo(r io.ReaderAt) (bi *debug.BuildInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			bi, err = nil, fmt.Errorf("build info reader failed: %v", p)
		}
	}()
	return buildinfo.Read(r)
}

// isLocalReplacement reports whether a replacement module is a directory
// on the build machine rather than a module version.
func isLocalReplacement(rep *debug.Module) bool {
	return rep.Version == "" || rep.Version == develVersion ||
		strings.HasPrefix(rep.Path, ".") || strings.HasPrefix(rep.Path, "/")
}

// goComponent builds a Go component with its package URL.
func goComponent(path, version, loc string) vulnref.Component {
	return vulnref.Component{
		Ecosystem: EcosystemGo,
		Name:      path,
		Version:   version,
		PURL:      goPURL(path, version),
		Location:  loc,
	}
}

// goPURL is the package URL of a Go module, or of the standard library,
// at an OSV-style version (without "v"): pkg:golang/golang.org/x/text@v0.3.5.
func goPURL(path, version string) string {
	ns, name := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		ns, name = path[:i], path[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, "v"+version, nil, "").ToString()
}

// trimV turns a Go module version into OSV's form: "v0.3.5" is "0.3.5".
func trimV(v string) string { return strings.TrimPrefix(v, "v") }

// goTagRE matches a Go release tag: major.minor, optional patch, optional
// beta or rc number.
var goTagRE = regexp.MustCompile(`^go(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?$`)

// StdlibVersion converts a Go toolchain version as a binary records it
// ("go1.22.3", "go1.22", "go1.21rc2", "go1.22.3 X:boringcrypto",
// "go1.22.3-vendor") to the form OSV uses for the Go standard library
// ("1.22.3", "1.22.0", "1.21.0-rc.2"). Only the first word is read, and a
// "-" or "+" suffix naming a vendor build is dropped. Development
// toolchains ("devel go1.23-abcdef") yield false.
func StdlibVersion(toolchain string) (string, bool) {
	f := strings.Fields(toolchain)
	if len(f) == 0 {
		return "", false
	}
	tag := f[0]
	if i := strings.IndexAny(tag, "-+"); i > 0 {
		tag = tag[:i]
	}
	if tag == "go1" {
		return "1.0.0", true
	}
	m := goTagRE.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	patch := m[3]
	if patch == "" {
		patch = "0"
	}
	v := m[1] + "." + m[2] + "." + patch
	if m[4] != "" {
		v += "-" + m[4] + "." + m[5]
	}
	return v, true
}

// normalizeStdlibVersion reads a standard library version in the forms
// SBOM tools write it ("go1.22.3", "v1.22.3", "1.22.3", "1.22") and
// returns OSV's form, or false.
func normalizeStdlibVersion(v string) (string, bool) {
	if strings.HasPrefix(v, "go") {
		return StdlibVersion(v)
	}
	sv := "v" + strings.TrimPrefix(v, "v")
	if !semver.IsValid(sv) {
		return "", false
	}
	return strings.TrimPrefix(semver.Canonical(sv), "v"), true
}
