// Package vulnfixture provides real test fixtures for ztota's certification
// service: tiny Go programs pinned to old module versions that have
// advisories in the Go vulnerability database, built with the current
// toolchain, and a harness that runs the official govulncheck on them
// against a local copy of the database made from an OSV export.
//
// The program sources live in testdata/programs/<name>/ (main.go,
// go.mod.in, go.sum.in; the module files carry an ".in" suffix because
// go:embed refuses directories holding a go.mod) and are embedded into the
// package. [Build] writes them to a scratch directory and builds them with
// the go command of the running toolchain; binaries are cached under a
// name derived from the sources and the toolchain, so a second call reuses
// them. [Govulncheck] installs a pinned govulncheck, [BuildVulnDB] turns an
// osv.dev all.zip of Go records into the directory layout govulncheck's
// -db file:// URL reads, and [ScanIDs] runs the scan.
//
// FIXTURES.md in this directory lists every program, its pinned modules
// and the advisory ids govulncheck reports against each OSV snapshot; the
// same table is available in code through [Expected].
//
// Building needs the Go module proxy (or a warm module cache).
package vulnfixture
