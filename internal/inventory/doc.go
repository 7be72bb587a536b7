// Package inventory is the certification service's verifier front end: it
// lists the software inside an artifact an integrator submits, reading
// the artifact itself, and compares that list with the SBOM supplied
// with it.
//
// # What is found where
//
// The artifact's format is detected from its first bytes, never from its
// name ([FromReader], [FromFile]):
//
//   - A Go executable (ELF, Mach-O or PE magic): its build information
//     (debug/buildinfo) gives one "Go" component per dependency module,
//     the main module if it carries a release version (a "(devel)" build
//     is skipped with a note), and the toolchain as "stdlib" at
//     [StdlibVersion] of the recorded Go version ("go1.22.3" is "1.22.3",
//     "go1.21rc2" is "1.21.0-rc.2", "go1.22.3 X:boringcrypto" is "1.22.3").
//     Versions lose their leading "v", as OSV's Go ecosystem writes them.
//     A module replaced by another module version ("=>") is listed under
//     the replacement's path and version, because that is the code in the
//     binary (vulnerability scanners do the same). A module replaced by a
//     local directory has no version of its own; it is listed at the
//     version the build required, with a note. Every Go component carries
//     the binary's GOOS and GOARCH from its build settings, so advisories
//     limited to other platforms can be set aside. The location of a
//     standalone binary's components is [LocationArtifact]. The function
//     table (pclntab) and every function's inline tree are read too, into [Inventory.Symbols] by location, for
//     symbol-level matching (see readGoSymbols; bounded by [MaxGoFuncs] and
//     its companions, a corrupt table is [ErrSymbolTable]). A binary whose
//     symbol table was stripped gets a note instead and its findings count
//     as present.
//   - A tar archive, plain or gzip-compressed: entries are walked in
//     order and nothing is written to disk. A regular file is read into
//     memory only if it starts with executable magic; it is then read as
//     a Go binary, located at its cleaned entry path ("usr/bin/app").
//     var/lib/dpkg/status and the files under var/lib/dpkg/status.d/ are
//     read as dpkg databases, located at "dpkg:" + the path. Symlinks and
//     hard links are not followed (their targets are read where they are
//     regular entries); executables without Go build information,
//     symlinks, special files and an opkg database are counted in notes.
//     Entries whose names ztota's bundle installer refuses (absolute,
//     with "..", a backslash, NUL, invalid UTF-8) are skipped with a note
//     naming them: such a bundle is never installed.
//   - A dpkg status file (starting with a Package field): one "Debian"
//     component per package whose Status says its files are on disk
//     (installed, unpacked, half-installed, half-configured,
//     triggers-awaited or triggers-pending), named by its binary package
//     name (the Package field) at its Version field, epoch included. The
//     source package, when the Source field names a different one, is
//     kept in the PURL's "upstream" qualifier. Malformed stanzas are
//     skipped and counted in a note.
//
// Anything else, including an executable without Go build information
// and xz, zstd or bzip2 data, is refused with [ErrUnrecognized]: the
// verifier does not certify what it cannot list. A truncated or corrupt
// archive or executable is refused with [ErrMalformed].
//
// # Bounds
//
// Every size is bounded by [Limits] (see [DefaultLimits]), and a limit
// that is hit yields a [LimitError] wrapping [ErrLimit]: the stored
// artifact (MaxArtifactBytes), each file read into memory
// (MaxEntryBytes), the decompressed tar stream and the sizes its entries
// declare (MaxTotalBytes), the decompressed bytes per compressed byte of
// a gzip stream past [RatioGraceBytes] (MaxCompressionRatio), tar entries
// (MaxEntries) and components (MaxComponents). An executable too large to
// read is an error, not a skip, so a binary cannot hide behind its size.
// SBOMs are bounded before decoding by a streaming scan: bytes
// (MaxSBOMBytes), JSON nesting (64 levels), JSON objects and arrays
// (MaxSBOMNodes), and CycloneDX components or SPDX packages
// (MaxComponents). Notes are capped at 100.
//
// # SBOMs
//
// [ParseSBOM] reads CycloneDX JSON (with cyclonedx-go) and SPDX 2.x JSON
// (with tools-golang), detected from the document, and maps package URLs
// to the same components the inventory reports. [CrossCheck] then
// compares the two by (ecosystem, name). The artifact's inventory always
// wins: an SBOM never adds, removes or changes a component that is
// checked for vulnerabilities; its disagreements with the artifact are
// reported as [vulnref.Disagreement] values.
package inventory
