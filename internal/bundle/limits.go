package bundle

import (
	"cmp"
	"fmt"
	"io/fs"
)

// Limits bounds what one bundle may cost. A zero field takes its value
// from [DefaultLimits]; a negative field is an error.
type Limits struct {
	MaxFiles      int   // entries in the archive, of any type (≥ 1)
	MaxTotalBytes int64 // bytes of all regular files together
	MaxFileBytes  int64 // bytes of one regular file
	MaxPathLen    int   // bytes of an entry name or link target
	MaxDepth      int   // components of an entry name
}

// DefaultLimits suits an application bundle on a small device.
var DefaultLimits = Limits{
	MaxFiles:      10_000,
	MaxTotalBytes: 512 << 20,
	MaxFileBytes:  256 << 20,
	MaxPathLen:    1024,
	MaxDepth:      32,
}

// blockSize is the tar record block.
const blockSize = 512

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxFiles < 0 || l.MaxTotalBytes < 0 || l.MaxFileBytes < 0 || l.MaxPathLen < 0 || l.MaxDepth < 0 {
		return l, fmt.Errorf("bundle: negative limit in %+v: use zero for the default", l)
	}
	d := DefaultLimits
	l.MaxFiles = cmp.Or(l.MaxFiles, d.MaxFiles)
	l.MaxTotalBytes = cmp.Or(l.MaxTotalBytes, d.MaxTotalBytes)
	l.MaxFileBytes = cmp.Or(l.MaxFileBytes, d.MaxFileBytes)
	l.MaxPathLen = cmp.Or(l.MaxPathLen, d.MaxPathLen)
	l.MaxDepth = cmp.Or(l.MaxDepth, d.MaxDepth)
	return l, nil
}

// streamLimit is the most decompressed tar bytes a bundle within l may
// need: the file bytes, their padding, a header block, a PAX header and
// records with two long names per entry, and the end-of-archive record.
func (l Limits) streamLimit() int64 {
	perEntry := int64(4*blockSize + 2*l.MaxPathLen + 512)
	over := int64(l.MaxFiles+1) * perEntry
	const endOfArchive = 20 * blockSize
	n := l.MaxTotalBytes + over + endOfArchive
	if n < l.MaxTotalBytes { // overflow
		return 1<<63 - 1
	}
	return n
}

// EntryType is the kind of an extracted entry.
type EntryType string

// Entry types recorded in [Stats.Entries].
const (
	TypeFile    EntryType = "file"
	TypeDir     EntryType = "dir"
	TypeSymlink EntryType = "symlink"
)

// Entry describes one extracted path, as written. Hard links appear as
// files carrying the digest of the file they link to.
type Entry struct {
	Name   string      // cleaned slash-separated path relative to the destination
	Type   EntryType   //
	Mode   fs.FileMode // permission bits as set on disk (files and dirs)
	Size   int64       // bytes (files)
	SHA256 string      // lowercase hex of the bytes written (files)
	Target string      // link target (symlinks)
}

// Stats reports what [Extract] wrote.
type Stats struct {
	Files, Dirs, Symlinks, Links int
	Bytes                        int64   // regular file bytes written
	StreamBytes                  int64   // decompressed tar bytes read, trailer included
	Entries                      []Entry // in archive order; implicit parent directories included
}
