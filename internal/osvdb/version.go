package osvdb

import (
	"regexp"
	"strings"
)

const (
	ecoGo = "Go"
	// goStdlib and goToolchain are the Go database's names for the standard
	// library and the go command; both are versioned by Go release.
	goStdlib    = "stdlib"
	goToolchain = "toolchain"
)

// goRelease matches a Go release version after its "go"/"v" prefix is
// dropped: "1.22", "1.22.3", "1.21rc2", "1.19beta1".
var goRelease = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?$`)

// normalizeVersion puts a component version into the form the OSV records
// of its ecosystem use. For Go it drops a leading "v" from module versions
// ("v0.3.7" -> "0.3.7"), and turns Go release names into the database's
// SemVer form ("go1.22.3" -> "1.22.3", "go1.21" -> "1.21.0",
// "go1.21rc2" -> "1.21.0-rc.2"). Other ecosystems are left as given.
func normalizeVersion(base, name, v string) string {
	v = strings.TrimSpace(v)
	if base != ecoGo {
		return v
	}
	if name != goStdlib && name != goToolchain {
		return strings.TrimPrefix(v, "v")
	}
	// "go1.22.3 X:boringcrypto" and similar carry build details after a space.
	v, _, _ = strings.Cut(v, " ")
	v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	m := goRelease.FindStringSubmatch(v)
	if m == nil {
		return v
	}
	patch := m[3]
	if patch == "" {
		patch = "0"
	}
	out := m[1] + "." + m[2] + "." + patch
	if m[4] != "" {
		out += "-" + m[4] + "." + m[5]
	}
	return out
}
