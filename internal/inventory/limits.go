package inventory

import (
	"cmp"
	"errors"
	"fmt"
)

// Limits bounds what one artifact or SBOM may cost. A zero field takes its
// value from [DefaultLimits]; a negative field is an error.
type Limits struct {
	// MaxArtifactBytes bounds the size of the submitted artifact as stored
	// (compressed, for a tar.gz).
	MaxArtifactBytes int64
	// MaxEntryBytes bounds one file that is read into memory: a Go binary
	// or a dpkg status file inside a tar, or a standalone dpkg status file.
	MaxEntryBytes int64
	// MaxTotalBytes bounds the decompressed tar stream and the sum of the
	// sizes that its entries declare.
	MaxTotalBytes int64
	// MaxEntries bounds the number of tar entries of any type.
	MaxEntries int
	// MaxComponents bounds the components of one inventory, and the
	// components (CycloneDX) or packages (SPDX) of one SBOM.
	MaxComponents int
	// MaxSBOMBytes bounds the size of an SBOM document.
	MaxSBOMBytes int64
	// MaxSBOMNodes bounds the JSON objects and arrays of an SBOM, anywhere
	// in the document. Decoding turns each into a Go value of up to about
	// a kilobyte, so this bounds the memory decoding takes.
	MaxSBOMNodes int
	// MaxCompressionRatio bounds the decompressed bytes of a gzip stream
	// per compressed byte read, past a grace of [RatioGraceBytes].
	MaxCompressionRatio int64
}

// RatioGraceBytes is how many decompressed bytes a gzip stream may yield
// before [Limits.MaxCompressionRatio] is enforced, so small, highly
// compressible archives are accepted.
const RatioGraceBytes = 16 << 20

// maxSBOMDepth bounds the nesting of JSON objects and arrays in an SBOM.
// Nested CycloneDX components take two levels each.
const maxSBOMDepth = 64

// maxNotes bounds the notes an inventory or SBOM carries; further notes
// are counted in a last note.
const maxNotes = 100

// DefaultLimits returns the limits used for zero fields: a 1 GiB artifact,
// 256 MiB read into memory per entry, 4 GiB expanded in all, 100,000 tar
// entries and components, a 64 MiB SBOM with 1,000,000 JSON nodes, and a
// gzip ratio of 200 to 1.
func DefaultLimits() Limits {
	return Limits{
		MaxArtifactBytes:    1 << 30,
		MaxEntryBytes:       256 << 20,
		MaxTotalBytes:       4 << 30,
		MaxEntries:          100_000,
		MaxComponents:       100_000,
		MaxSBOMBytes:        64 << 20,
		MaxSBOMNodes:        1_000_000,
		MaxCompressionRatio: 200,
	}
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxArtifactBytes < 0 || l.MaxEntryBytes < 0 || l.MaxTotalBytes < 0 || l.MaxEntries < 0 ||
		l.MaxComponents < 0 || l.MaxSBOMBytes < 0 || l.MaxSBOMNodes < 0 || l.MaxCompressionRatio < 0 {
		return l, fmt.Errorf("inventory: negative limit in %+v: use zero for the default", l)
	}
	d := DefaultLimits()
	l.MaxArtifactBytes = cmp.Or(l.MaxArtifactBytes, d.MaxArtifactBytes)
	l.MaxEntryBytes = cmp.Or(l.MaxEntryBytes, d.MaxEntryBytes)
	l.MaxTotalBytes = cmp.Or(l.MaxTotalBytes, d.MaxTotalBytes)
	l.MaxEntries = cmp.Or(l.MaxEntries, d.MaxEntries)
	l.MaxComponents = cmp.Or(l.MaxComponents, d.MaxComponents)
	l.MaxSBOMBytes = cmp.Or(l.MaxSBOMBytes, d.MaxSBOMBytes)
	l.MaxSBOMNodes = cmp.Or(l.MaxSBOMNodes, d.MaxSBOMNodes)
	l.MaxCompressionRatio = cmp.Or(l.MaxCompressionRatio, d.MaxCompressionRatio)
	return l, nil
}

var (
	// ErrLimit is wrapped by every [LimitError].
	ErrLimit = errors.New("inventory: size limit exceeded")
	// ErrUnrecognized reports an artifact that is none of the formats the
	// verifier reads.
	ErrUnrecognized = errors.New("inventory: artifact format not recognized; submit a Go binary (ELF, Mach-O or PE), a tar or gzip-compressed tar bundle, or a dpkg status file")
	// ErrMalformed reports an artifact of a known format that cannot be
	// read: a truncated tar, a corrupt gzip stream, a damaged executable.
	ErrMalformed = errors.New("inventory: malformed artifact")
	// ErrSBOM reports an SBOM that is not a readable CycloneDX or SPDX JSON
	// document.
	ErrSBOM = errors.New("inventory: unreadable SBOM; supply CycloneDX JSON or SPDX 2.x JSON")
)

// LimitError names the limit that was exceeded.
type LimitError struct {
	Limit string // the field of [Limits], or the named constant
	Max   int64  // its value
	Name  string // the tar entry being read, if any
}

func (e *LimitError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("inventory: entry %q exceeds %s (%d)", e.Name, e.Limit, e.Max)
	}
	return fmt.Sprintf("inventory: input exceeds %s (%d)", e.Limit, e.Max)
}

// Unwrap returns [ErrLimit].
func (e *LimitError) Unwrap() error { return ErrLimit }
