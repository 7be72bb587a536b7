package osvdb

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/ztota/ztota/internal/vulnref"
)

// Errors that make a whole load fail.
var (
	ErrNotZip      = errors.New("not a zip archive")
	ErrTooLarge    = errors.New("size limit exceeded")
	ErrTooMany     = errors.New("too many entries")
	ErrUnsafePath  = errors.New("unsafe entry name")
	ErrDuplicateID = errors.New("duplicate record id")
	ErrCorrupt     = errors.New("corrupt archive entry")
	ErrNotRegular  = errors.New("not a regular file (symbolic links are not followed)")
	ErrEmpty       = errors.New("no usable records")
)

// DB is one loaded snapshot of OSV records, indexed by package. It is
// immutable after loading and safe for concurrent use.
type DB struct {
	source   string
	id       string
	records  map[string]*Record
	ids      []string // sorted
	index    map[vulnref.Key][]*affected
	rejected []Rejection
}

// Rejection is a record skipped while loading, with the reason.
type Rejection struct {
	// File is the zip entry or file (relative to the loaded directory).
	File string
	// Err says why; it wraps one of the Err* reasons of this package.
	Err error
}

func (r Rejection) Error() string { return r.File + ": " + r.Err.Error() }

// Unwrap returns the reason.
func (r Rejection) Unwrap() error { return r.Err }

// ID returns "sha256:<hex>", a digest of the snapshot's content that does
// not depend on file order or compression: SHA-256 over, for each record in
// ascending id order, the line "<id> <hex sha256 of the raw JSON>\n".
// Rejected records are not part of it.
func (db *DB) ID() string { return db.id }

// Source returns the path or name the snapshot was loaded from.
func (db *DB) Source() string { return db.source }

// Len returns the number of records loaded (withdrawn ones included,
// rejected ones not).
func (db *DB) Len() int { return len(db.records) }

// Record returns the record with the given id.
func (db *DB) Record(id string) (*Record, bool) {
	r, ok := db.records[id]
	return r, ok
}

// IDs returns the ids of all records, sorted.
func (db *DB) IDs() []string { return append([]string(nil), db.ids...) }

// Packages returns the number of indexed package keys: distinct pairs of
// ecosystem (the part before ':') and package name named by records that
// are not withdrawn.
func (db *DB) Packages() int { return len(db.index) }

// Rejected returns the records skipped while loading, in input order.
func (db *DB) Rejected() []Rejection { return append([]Rejection(nil), db.rejected...) }

// Load reads a snapshot from path: an OSV all.zip file, or a directory
// whose *.json files (found recursively, hidden directories skipped) are
// one record each.
func Load(path string, lim Limits) (*DB, error) {
	lim, err := lim.resolve()
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("osvdb: %w", err)
	}
	if st.IsDir() {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, fmt.Errorf("osvdb: %w", err)
		}
		return loadDir(real, path, lim)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("osvdb: %s: not a regular file or directory", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("osvdb: %w", err)
	}
	defer f.Close()
	return LoadZip(f, st.Size(), path, lim)
}

// LoadZip reads a snapshot from an OSV all.zip archive of the given size.
// source names it for Source and error messages.
func LoadZip(r io.ReaderAt, size int64, source string, lim Limits) (*DB, error) {
	lim, err := lim.resolve()
	if err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("osvdb: %s: negative archive size %d", source, size)
	}
	if size > lim.MaxArchiveBytes {
		return nil, fmt.Errorf("osvdb: %s: archive is %d bytes, limit %d: %w", source, size, lim.MaxArchiveBytes, ErrTooLarge)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("osvdb: %s: %w: %v", source, ErrNotZip, err)
	}
	if zr == nil {
		return nil, fmt.Errorf("osvdb: %s: %w: %v", source, ErrNotZip, err)
	}
	if len(zr.File) > lim.MaxRecords {
		return nil, fmt.Errorf("osvdb: %s: %d entries, limit %d: %w", source, len(zr.File), lim.MaxRecords, ErrTooMany)
	}
	// Check every declared size before decompressing anything.
	var declared uint64
	for _, f := range zr.File {
		if err := checkEntryName(f.Name); err != nil {
			return nil, fmt.Errorf("osvdb: %s: %w", source, err)
		}
		if f.UncompressedSize64 > uint64(lim.MaxRecordBytes) {
			return nil, fmt.Errorf("osvdb: %s: entry %q declares %d bytes, limit %d: %w",
				source, f.Name, f.UncompressedSize64, lim.MaxRecordBytes, ErrTooLarge)
		}
		declared += f.UncompressedSize64
		if declared > uint64(lim.MaxTotalBytes) {
			return nil, fmt.Errorf("osvdb: %s: entries declare more than %d bytes in total: %w", source, lim.MaxTotalBytes, ErrTooLarge)
		}
	}
	b := newBuilder(source, lim)
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("osvdb: %s: entry %q: %w: %v", source, f.Name, ErrCorrupt, err)
		}
		raw, err := b.read(f.Name, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("osvdb: %s: %w", source, err)
		}
		b.add(f.Name, raw)
	}
	return b.finish()
}

// checkEntryName rejects zip entry names that are absolute, climb out with
// "..", use backslashes, start with a drive letter ("C:"), or hold control
// characters. Other colons are fine: some OSV ids ("ALSA-2022:0001") hold one.
func checkEntryName(name string) error {
	n := strings.TrimSuffix(name, "/")
	drive := len(n) >= 2 && n[1] == ':' && (n[0]|0x20 >= 'a' && n[0]|0x20 <= 'z')
	if !fs.ValidPath(n) || n == "." || drive || strings.Contains(n, `\`) ||
		strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: %q", ErrUnsafePath, truncate(name, 128))
	}
	return nil
}

// loadDir walks a directory of *.json records.
// root is the resolved directory, source the path as given.
func loadDir(root, source string, lim Limits) (*DB, error) {
	b := newBuilder(source, lim)
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, rerr := filepath.Rel(root, p)
		if rerr != nil {
			return rerr
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".json") {
			return nil
		}
		if files++; files > lim.MaxRecords {
			return fmt.Errorf("more than %d record files: %w", lim.MaxRecords, ErrTooMany)
		}
		if !d.Type().IsRegular() {
			b.reject(rel, ErrNotRegular)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > lim.MaxRecordBytes {
			return fmt.Errorf("%s is %d bytes, limit %d: %w", rel, info.Size(), lim.MaxRecordBytes, ErrTooLarge)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		raw, err := b.read(rel, f)
		f.Close()
		if err != nil {
			return err
		}
		b.add(rel, raw)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("osvdb: %s: %w", source, err)
	}
	return b.finish()
}

// builder collects raw records, then parses and indexes them.
type builder struct {
	source   string
	lim      Limits
	total    int64
	names    []string
	raws     [][]byte
	rejected []Rejection
}

func newBuilder(source string, lim Limits) *builder {
	return &builder{source: source, lim: lim}
}

// read reads one record through a limit of MaxRecordBytes and counts it
// against MaxTotalBytes.
func (b *builder) read(name string, r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, b.lim.MaxRecordBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err)
	}
	if int64(len(raw)) > b.lim.MaxRecordBytes {
		return nil, fmt.Errorf("%s: record exceeds %d bytes: %w", name, b.lim.MaxRecordBytes, ErrTooLarge)
	}
	b.total += int64(len(raw))
	if b.total > b.lim.MaxTotalBytes {
		return nil, fmt.Errorf("records exceed %d bytes in total: %w", b.lim.MaxTotalBytes, ErrTooLarge)
	}
	return raw, nil
}

func (b *builder) add(name string, raw []byte) {
	b.names = append(b.names, name)
	b.raws = append(b.raws, raw)
}

// reject notes a file that is skipped before parsing.
func (b *builder) reject(name string, err error) {
	b.rejected = append(b.rejected, Rejection{File: name, Err: err})
}

// finish parses the records on all CPUs, then indexes them in input order.
func (b *builder) finish() (*DB, error) {
	recs := make([]*Record, len(b.raws))
	errs := make([]error, len(b.raws))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				recs[i], errs[i] = parseRecord(b.raws[i])
			}
		}()
	}
	for i := range b.raws {
		next <- i
	}
	close(next)
	wg.Wait()

	db := &DB{
		source:   b.source,
		records:  make(map[string]*Record, len(recs)),
		index:    make(map[vulnref.Key][]*affected),
		rejected: b.rejected,
	}
	for i, rec := range recs {
		if errs[i] != nil {
			db.rejected = append(db.rejected, Rejection{File: b.names[i], Err: errs[i]})
			continue
		}
		rec.File = b.names[i]
		if prev, dup := db.records[rec.ID()]; dup {
			return nil, fmt.Errorf("osvdb: %s: %w %q in %s and %s", b.source, ErrDuplicateID, rec.ID(), prev.File, rec.File)
		}
		db.records[rec.ID()] = rec
		db.ids = append(db.ids, rec.ID())
	}
	if len(db.ids) == 0 {
		return nil, fmt.Errorf("osvdb: %s: %w (%d rejected)", b.source, ErrEmpty, len(db.rejected))
	}
	sort.Strings(db.ids)
	h := sha256.New()
	for _, id := range db.ids {
		rec := db.records[id]
		fmt.Fprintf(h, "%s %s\n", id, strings.TrimPrefix(rec.Digest, "sha256:"))
		if rec.Withdrawn {
			continue
		}
		for _, e := range rec.affected {
			db.index[e.key] = append(db.index[e.key], e)
		}
	}
	db.id = "sha256:" + hex.EncodeToString(h.Sum(nil))
	b.raws = nil
	return db, nil
}
