package inventory

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/ztota/ztota/internal/vulnref"
)

// dpkgStanza holds the fields of one dpkg status stanza that the
// inventory reads.
type dpkgStanza struct {
	pkg, version, status, source, arch string
	seen                               map[string]bool
	lastField                          bool // a field line was read, so continuation lines are allowed
	problem                            string
	lines                              int
}

// dpkgOnDisk lists the package states (the third word of Status) in which
// a package's files are, at least partly, on disk. "not-installed" and
// "config-files" packages are left out.
var dpkgOnDisk = map[string]bool{
	"installed":        true,
	"half-configured":  true,
	"unpacked":         true,
	"half-installed":   true,
	"triggers-awaited": true,
	"triggers-pending": true,
	"not-installed":    false,
	"config-files":     false,
}

var (
	dpkgWant = map[string]bool{"unknown": true, "install": true, "hold": true, "deinstall": true, "purge": true}
	dpkgFlag = map[string]bool{"ok": true, "reinstreq": true}
)

// looksLikeDpkgStatus reports whether b starts like a dpkg status file:
// optional blank lines, then a Package field.
func looksLikeDpkgStatus(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) >= len("package:") && strings.EqualFold(string(b[:len("package:")]), "package:")
}

// dpkgStatus adds the packages of a dpkg status database. A package is
// listed under its binary package name (the Package field) at its Version
// field, with its source package, when the Source field names one, in the
// PURL's "upstream" qualifier. Packages whose Status says their files are
// not on disk are left out. If requireStatus is false (the one-file-per-
// package databases under var/lib/dpkg/status.d/), a stanza without a
// Status field counts as installed. Malformed stanzas are skipped and
// counted in a note.
//
// This small parser is used rather than osv-scalibr's dpkg extractor,
// which needs a scan root and file system, logs through a global logger,
// fails a whole database on one malformed Status field, and lists only
// "installed" packages; the tests check that both list the same packages
// for a real-world database.
func (c *collector) dpkgStatus(data []byte, loc string, requireStatus bool) error {
	var (
		st        dpkgStanza
		n         int // stanzas
		malformed int
		firstBad  string
	)
	finish := func() error {
		if st.lines == 0 {
			return nil
		}
		n++
		comp, problem, listed := st.component(loc, requireStatus)
		st = dpkgStanza{}
		if problem != "" {
			if malformed == 0 {
				firstBad = fmt.Sprintf("stanza %d: %s", n, problem)
			}
			malformed++
			return nil
		}
		if !listed {
			return nil
		}
		return c.add(comp)
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			if err := finish(); err != nil {
				return err
			}
			continue
		}
		st.line(line)
	}
	if err := finish(); err != nil {
		return err
	}
	if malformed > 0 {
		c.note("%s: %d malformed stanzas skipped (first: %s)", loc, malformed, firstBad)
	}
	if n == 0 {
		c.note("%s: dpkg status database is empty", loc)
	}
	return nil
}

// line reads one non-blank line into the stanza.
func (st *dpkgStanza) line(line []byte) {
	st.lines++
	if st.problem != "" {
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		if !st.lastField {
			st.problem = "continuation line without a field"
		}
		return
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		st.problem = "line is not a field"
		return
	}
	name := strings.ToLower(string(line[:i]))
	if strings.ContainsAny(name, " \t") {
		st.problem = "field name holds a space"
		return
	}
	st.lastField = true
	value := strings.TrimSpace(string(line[i+1:]))
	var dst *string
	switch name {
	case "package":
		dst = &st.pkg
	case "version":
		dst = &st.version
	case "status":
		dst = &st.status
	case "source":
		dst = &st.source
	case "architecture":
		dst = &st.arch
	default:
		return
	}
	if st.seen == nil {
		st.seen = map[string]bool{}
	}
	if st.seen[name] {
		st.problem = "duplicate " + name + " field"
		return
	}
	st.seen[name] = true
	*dst = value
}

// component turns a complete stanza into a component. It returns a
// problem for a malformed stanza, and listed false for a package whose
// files are not on disk.
func (st *dpkgStanza) component(loc string, requireStatus bool) (comp vulnref.Component, problem string, listed bool) {
	if st.problem != "" {
		return comp, st.problem, false
	}
	switch {
	case st.pkg == "":
		return comp, "no Package field", false
	case !validDebName(st.pkg):
		return comp, "invalid package name " + quote(st.pkg), false
	}
	if st.status == "" {
		if requireStatus {
			return comp, "no Status field for " + quote(st.pkg), false
		}
	} else {
		f := strings.Fields(st.status)
		if len(f) != 3 || !dpkgWant[f[0]] || !dpkgFlag[f[1]] {
			return comp, "invalid Status " + quote(st.status) + " for " + quote(st.pkg), false
		}
		onDisk, known := dpkgOnDisk[f[2]]
		if !known {
			return comp, "invalid Status " + quote(st.status) + " for " + quote(st.pkg), false
		}
		if !onDisk {
			return comp, "", false
		}
	}
	switch {
	case st.version == "":
		return comp, "no Version field for " + quote(st.pkg), false
	case !validDebVersion(st.version):
		return comp, "invalid version " + quote(st.version) + " for " + quote(st.pkg), false
	}
	srcName, srcVersion, ok := parseDebSource(st.source)
	if !ok {
		return comp, "invalid Source " + quote(st.source) + " for " + quote(st.pkg), false
	}
	return vulnref.Component{
		Ecosystem: EcosystemDebian,
		Name:      st.pkg,
		Version:   st.version,
		PURL:      debPURL(st.pkg, st.version, st.arch, srcName, srcVersion),
		Location:  loc,
	}, "", true
}

// parseDebSource reads a Source field: "", "name" or "name (version)".
func parseDebSource(s string) (name, version string, ok bool) {
	if s == "" {
		return "", "", true
	}
	name, rest, hasVersion := strings.Cut(s, " ")
	if !validDebName(name) {
		return "", "", false
	}
	if !hasVersion {
		return name, "", true
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return "", "", false
	}
	version = strings.TrimSpace(rest[1 : len(rest)-1])
	if !validDebVersion(version) {
		return "", "", false
	}
	return name, version, true
}

// debPURL is the package URL of a Debian binary package, following the
// common convention: pkg:deb/debian/libssl3@3.0.11-1?arch=amd64&upstream=openssl.
func debPURL(name, version, arch, srcName, srcVersion string) string {
	var q packageurl.Qualifiers
	if arch != "" && validDebArch(arch) {
		q = append(q, packageurl.Qualifier{Key: "arch", Value: arch})
	}
	if srcName != "" && (srcName != name || (srcVersion != "" && srcVersion != version)) {
		up := srcName
		if srcVersion != "" && srcVersion != version {
			up += "@" + srcVersion
		}
		q = append(q, packageurl.Qualifier{Key: "upstream", Value: up})
	}
	return packageurl.NewPackageURL(packageurl.TypeDebian, "debian", name, version, q, "").ToString()
}

// validDebName checks a Debian package name: lower-case letters, digits,
// "+", "-" and ".", starting with a letter or digit.
func validDebName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '+' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// validDebVersion checks the characters of a Debian version:
// [epoch:]upstream[-revision] with letters, digits and ".+~:-".
func validDebVersion(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && !strings.ContainsRune(".+~:-", rune(c)) {
			return false
		}
	}
	return true
}

func validDebArch(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
