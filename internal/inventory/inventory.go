package inventory

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ztota/ztota/internal/vulnref"
)

// Artifact kinds reported in [Inventory.Kind].
const (
	// KindGoBinary is a single Go executable (ELF, Mach-O or PE).
	KindGoBinary = "go-binary"
	// KindTar is a tar archive, plain or gzip-compressed.
	KindTar = "tar"
	// KindDpkgStatus is a standalone dpkg status database.
	KindDpkgStatus = "dpkg-status"
)

// LocationArtifact is the location of a component found in an artifact
// that is itself a Go binary; "dpkg:" + LocationArtifact is that of a
// package listed by an artifact that is itself a dpkg status file.
const LocationArtifact = "."

// Inventory is the software found in one artifact, read from the artifact
// itself.
type Inventory struct {
	// Kind is the artifact's format: KindGoBinary, KindTar or
	// KindDpkgStatus.
	Kind string `json:"kind"`
	// Components are sorted by ecosystem, name, version, location and
	// PURL, with one component per (ecosystem, name, version, location).
	Components []vulnref.Component `json:"components"`
	// Notes say what was skipped or could not be read, e.g.
	// "bin/tool: Go binary without module info". At most 100 notes are kept.
	Notes []string `json:"notes,omitempty"`
	// Symbols holds, by location, the functions linked into each Go
	// binary whose function table could be read (see readGoSymbols); a Go
	// binary absent from it has no symbol-level precision. It is not
	// stored: it is read again from the artifact when needed.
	Symbols map[string]*vulnref.Symbols `json:"-"`
}

// FromFile inventories the artifact stored in the regular file at path.
func FromFile(path string, lim Limits) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: open artifact: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inventory: stat artifact: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("inventory: artifact %s is a %v, not a regular file; submit a tar bundle instead of a directory", path, fi.Mode().Type())
	}
	inv, err := FromReader(f, fi.Size(), lim)
	if err != nil {
		return nil, fmt.Errorf("%w (artifact %s)", err, path)
	}
	return inv, nil
}

// FromReader inventories the artifact held in the first size bytes of r.
// The format is detected from the content, never from a name: a tar
// archive (plain or gzip-compressed), a Go executable, or a dpkg status
// file. Anything else yields an error wrapping [ErrUnrecognized]. An
// executable without Go build information is unrecognized too: the
// verifier cannot list what is inside it.
func FromReader(r io.ReaderAt, size int64, lim Limits) (*Inventory, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("inventory: nil artifact reader")
	}
	if size < 0 {
		return nil, fmt.Errorf("inventory: negative artifact size %d", size)
	}
	if size > lim.MaxArtifactBytes {
		return nil, &LimitError{Limit: "MaxArtifactBytes", Max: lim.MaxArtifactBytes}
	}
	head := make([]byte, min(size, blockSize))
	if n, err := r.ReadAt(head, 0); n < len(head) {
		return nil, fmt.Errorf("%w: read artifact: %v", ErrMalformed, err)
	}
	c := newCollector(lim)
	var kind string
	switch f := detect(head); f {
	case formatGzip:
		kind = KindTar
		err = c.walkGzip(io.NewSectionReader(r, 0, size))
	case formatTar:
		kind = KindTar
		err = c.walkTar(io.NewSectionReader(r, 0, size), nil)
	case formatExecutable:
		kind = KindGoBinary
		if err = c.goBinary(io.NewSectionReader(r, 0, size), LocationArtifact); errors.Is(err, errNoBuildInfo) {
			err = fmt.Errorf("%w: %v", ErrUnrecognized, err)
		}
	case formatDpkg:
		kind = KindDpkgStatus
		if size > lim.MaxEntryBytes {
			return nil, &LimitError{Limit: "MaxEntryBytes", Max: lim.MaxEntryBytes}
		}
		data := make([]byte, size)
		if n, rerr := r.ReadAt(data, 0); int64(n) < size {
			return nil, fmt.Errorf("%w: read dpkg status: %v", ErrMalformed, rerr)
		}
		err = c.dpkgStatus(data, "dpkg:"+LocationArtifact, true)
	default:
		if what := f.unsupported(); what != "" {
			return nil, fmt.Errorf("%w (found %s)", ErrUnrecognized, what)
		}
		return nil, ErrUnrecognized
	}
	if err != nil {
		return nil, err
	}
	return c.finish(kind), nil
}

// format is what the first bytes of an input say it is.
type format int

const (
	formatUnknown format = iota
	formatGzip
	formatTar
	formatExecutable
	formatDpkg
	formatXZ
	formatZstd
	formatBzip2
)

func (f format) unsupported() string {
	switch f {
	case formatXZ:
		return "xz-compressed data; recompress the bundle with gzip"
	case formatZstd:
		return "zstd-compressed data; recompress the bundle with gzip"
	case formatBzip2:
		return "bzip2-compressed data; recompress the bundle with gzip"
	}
	return ""
}

// detect classifies an input by its first (up to 512) bytes. A tar header
// is tried before executable magic, since a tar entry's name could start
// with "MZ".
func detect(head []byte) format {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return formatGzip
	case isTarHeader(head):
		return formatTar
	case isExecutable(head):
		return formatExecutable
	case looksLikeDpkgStatus(head):
		return formatDpkg
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return formatXZ
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return formatZstd
	case bytes.HasPrefix(head, []byte("BZh")):
		return formatBzip2
	}
	return formatUnknown
}

// collector gathers the components and notes of one inventory.
type collector struct {
	lim          Limits
	comps        []vulnref.Component
	symbols      map[string]*vulnref.Symbols
	symbolCount  int
	notes        []string
	droppedNotes int
}

func newCollector(lim Limits) *collector { return &collector{lim: lim} }

func (c *collector) add(comp vulnref.Component) error {
	if len(c.comps) >= c.lim.MaxComponents {
		return &LimitError{Limit: "MaxComponents", Max: int64(c.lim.MaxComponents)}
	}
	c.comps = append(c.comps, comp)
	return nil
}

func (c *collector) note(format string, args ...any) {
	if len(c.notes) >= maxNotes {
		c.droppedNotes++
		return
	}
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

func (c *collector) finish(kind string) *Inventory {
	notes := c.notes
	if c.droppedNotes > 0 {
		notes = append(notes, fmt.Sprintf("%d further notes omitted", c.droppedNotes))
	}
	comps := sortComponents(c.comps)
	if comps == nil {
		comps = []vulnref.Component{}
	}
	return &Inventory{Kind: kind, Components: comps, Notes: notes, Symbols: c.symbols}
}

// sortComponents sorts components and keeps the first of each
// (ecosystem, name, version, location).
func sortComponents(cs []vulnref.Component) []vulnref.Component {
	slices.SortFunc(cs, compareComponents)
	return slices.CompactFunc(cs, func(a, b vulnref.Component) bool {
		return a.Ecosystem == b.Ecosystem && a.Name == b.Name && a.Version == b.Version && a.Location == b.Location
	})
}

func compareComponents(a, b vulnref.Component) int {
	return cmp.Or(
		cmp.Compare(a.Ecosystem, b.Ecosystem),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.Location, b.Location),
		cmp.Compare(a.PURL, b.PURL),
	)
}

// quote renders a name from an artifact for a note, bounded in length.
func quote(s string) string { return fmt.Sprintf("%q", shorten(s)) }

// shorten bounds the length of a name from an artifact.
func shorten(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
