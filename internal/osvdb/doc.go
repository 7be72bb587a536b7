// Package osvdb is the vulnerability database of ztota's software
// certification service. It loads a snapshot of OSV records (an osv.dev
// per-ecosystem all.zip, or a directory of *.json records), names the
// snapshot by a content digest, and answers which advisories affect a
// software component.
//
// # Snapshots
//
// Records are parsed with the OSV schema bindings (osvschema); fields the
// bindings do not know are ignored. A snapshot's ID is "sha256:<hex>" over
// the sorted list of (record id, SHA-256 of the record's raw JSON), so the
// same records give the same ID whatever the zip's order or compression.
// Diff compares two snapshots by id and digest and lists the packages
// whose verdicts may differ between them.
//
// A record that cannot be used is skipped and listed by DB.Rejected with
// its file and reason: JSON the bindings reject, a missing or malformed
// id, an affected package without name or ecosystem, a range of unknown
// type, an event that is not exactly one of introduced, fixed,
// last_affected or limit, a range without an introduced event, a version that does not
// parse (SEMVER ranges and the Go ecosystem require SemVer 2.0 without a
// leading "v"), or an ECOSYSTEM range in an ecosystem whose version order
// is unknown. Anything wrong with the container fails the whole load: a
// file that is not a zip, an unsafe entry name (absolute, "..", backslash,
// leading drive letter, control character; other colons are allowed, as
// some OSV ids hold one), a size or count over Limits, a corrupt entry
// (bad CRC, more data than declared), two records with the same id, or no
// usable record at all. A loaded DB is immutable and safe for concurrent
// use.
//
// # Bounds
//
// Limits bounds the archive size, each record (as declared by the zip
// entry and as actually read, every entry being read through an
// io.LimitReader), the total of all records, and the number of entries.
// DefaultLimits gives the 2026 Go snapshot (3.1 MiB zip, 4,291 records,
// 7.6 MiB of JSON, largest record 12.6 KiB) about four times headroom:
// 16 MiB, 64 KiB per record, 32 MiB in total, 20,000 entries. Declared
// sizes are checked before anything is decompressed.
//
// # Evaluation
//
// Matching follows the evaluation algorithm published with the OSV
// schema. A component matches an affected[] entry when the package name
// is equal and the ecosystems agree: the parts before ':' must be equal,
// and the parts after it ("Debian:12") must be equal when both sides give
// one, so a component in "Debian" matches records for "Debian:12", and a
// component in "Debian:12" matches records for "Debian" and "Debian:12"
// but not "Debian:11". The entry affects the version when
//
//   - the version is listed in versions[] (exact string), or
//   - some SEMVER or ECOSYSTEM range includes it: walking the range's
//     events in version order, introduced (with "0" below every version)
//     sets "affected" when version >= event, fixed clears it when
//     version >= event, last_affected clears it when version > event; and
//     when the range has limit events the version must be below one of
//     them ("*" is above every version).
//
// GIT ranges are ignored: resolving commits needs the source repository.
// Records usually carry the versions those commits map to in versions[],
// which is honoured. Informational ranges inside ecosystem_specific (the
// Go database's custom_ranges) are ignored too. Several ranges and several
// affected[] entries are alternatives: any one suffices. A record with a
// withdrawn time never matches.
//
// SEMVER ranges are ordered as SemVer 2.0, ECOSYSTEM ranges by the
// ecosystem's own rules; both comparisons come from osv-scalibr's
// semantic package. Record versions are parsed once at load time; a
// component's version once per Match call.
//
// Match looks the component up by (ecosystem before ':', name), so its cost
// grows with the records naming that package, not with the database. It
// gives one finding per matching record, sorted by id. Its Fixed is
// the lowest fixed event above the component's version among the ranges
// that matched ("" when none, e.g. only last_affected is known or the
// match came from versions[]).
//
// # Go
//
// The Go database writes module versions without "v" ("0.3.7",
// pseudo-versions "0.0.0-20210226172049-e18ecbb05110", which order as
// SemVer prereleases), and the Go release as package "stdlib" (the go
// command as "toolchain") with versions such as "1.22.3" or "1.21.0-rc.2".
// Component versions are normalized to that form: a leading "v" is
// dropped, and for stdlib/toolchain "go1.22.3" becomes "1.22.3", "go1.21"
// "1.21.0" and "go1.21rc2" "1.21.0-rc.2". A Go component version that is
// then not SemVer (e.g. "(devel)") cannot be compared with ranges; Match
// then reports only versions[] matches, and Evaluate also returns an error
// so that the caller need not take "no findings" for "not affected". The
// same holds for a version another ecosystem's parser rejects.
//
// Go entries' ecosystem_specific.imports (package path, vulnerable
// symbols, GOOS/GOARCH) are compiled too: the platforms filter matches as
// govulncheck does, and [DB.MatchAllSymbols] sets each finding's level
// (present or module-only) from the functions linked into the binary.
//
// # Severity
//
// A finding's severity is the highest rating among the parseable CVSS
// vectors (v2, v3.0, v3.1, v4.0; base score computed with go-cvss) of the
// affected entry's own severity[], or else of the record's severity[],
// mapped to the CVSS qualitative ratings: 9.0 and up CRITICAL, 7.0 HIGH,
// 4.0 MODERATE, else LOW (v2 has no CRITICAL); an "Ubuntu" priority there
// is taken as a word. Without one, a severity word ("CRITICAL", "HIGH",
// "MODERATE" or "MEDIUM", "LOW") from the entry's ecosystem_specific or
// database_specific, or else the record's database_specific, is used;
// otherwise the severity is UNKNOWN, as for almost all of the Go database.
package osvdb
