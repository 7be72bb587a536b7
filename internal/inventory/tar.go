package inventory

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// blockSize is the tar record block.
const blockSize = 512

// dpkg and opkg database paths inside a root file system.
const (
	dpkgStatusPath   = "var/lib/dpkg/status"
	dpkgStatusDir    = "var/lib/dpkg/status.d/"
	opkgStatusPath   = "usr/lib/opkg/status"
	maxListedSkipped = 5 // names listed in an aggregated note
)

// isTarHeader reports whether b starts with a tar header block whose
// checksum is right (ustar, GNU and old V7 headers alike).
func isTarHeader(b []byte) bool {
	if len(b) < blockSize {
		return false
	}
	field := strings.TrimRight(strings.TrimLeft(string(b[148:156]), " \x00"), " \x00")
	want, err := strconv.ParseUint(field, 8, 32)
	if err != nil {
		return false
	}
	var unsigned uint64
	var signed int64
	for i, c := range b[:blockSize] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += uint64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || int64(want) == signed
}

// walkGzip inventories a gzip-compressed tar archive.
func (c *collector) walkGzip(r io.Reader) error {
	in := &countingReader{r: r}
	zr, err := gzip.NewReader(bufio.NewReader(in))
	if err != nil {
		return fmt.Errorf("%w: gzip header: %v", ErrMalformed, err)
	}
	bounded := &expandReader{r: zr, in: in, lim: c.lim}
	br := bufio.NewReaderSize(bounded, blockSize)
	head, err := br.Peek(blockSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return readErr("gzip", err)
	}
	if !isTarHeader(head) {
		return fmt.Errorf("%w: the gzip stream does not hold a tar archive", ErrUnrecognized)
	}
	return c.walkTar(br, br)
}

// walkTar inventories a tar archive. If trailer is not nil, it is read to
// its end once the archive ends, so a gzip checksum is verified.
func (c *collector) walkTar(r io.Reader, trailer io.Reader) error {
	w := tarWalker{c: c, tr: tar.NewReader(r)}
	if err := w.run(); err != nil {
		return err
	}
	if trailer != nil {
		if _, err := io.Copy(io.Discard, trailer); err != nil {
			return readErr("tar trailer", err)
		}
	}
	w.summarize()
	return nil
}

type tarWalker struct {
	c        *collector
	tr       *tar.Reader
	entries  int
	declared int64 // bytes declared by regular files
	links    int
	special  int
	nonGo    int      // executables without Go build info
	nonGoAt  []string // the first maxListedSkipped of them
	found    bool     // a Go binary or dpkg database was read
}

func (w *tarWalker) run() error {
	lim := w.c.lim
	for {
		hdr, err := w.tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return readErr("tar", err)
		}
		w.entries++
		if w.entries > lim.MaxEntries {
			return &LimitError{Limit: "MaxEntries", Max: int64(lim.MaxEntries)}
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeGNUSparse:
		case tar.TypeSymlink, tar.TypeLink:
			w.links++
			continue
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		default:
			w.special++
			continue
		}
		if hdr.Size > lim.MaxTotalBytes-w.declared {
			return &LimitError{Limit: "MaxTotalBytes", Max: lim.MaxTotalBytes, Name: shorten(hdr.Name)}
		}
		w.declared += hdr.Size
		name, problem := cleanEntryName(hdr.Name)
		if problem != "" {
			w.c.note("tar entry %s skipped: %s", quote(hdr.Name), problem)
			continue
		}
		if err := w.file(hdr, name); err != nil {
			return err
		}
	}
}

// file reads one regular file if it is a dpkg database or an executable.
func (w *tarWalker) file(hdr *tar.Header, name string) error {
	lim := w.c.lim
	switch {
	case name == opkgStatusPath:
		w.c.note("%s: opkg database not inventoried (no OSV ecosystem)", name)
		return nil
	case name == dpkgStatusPath || isDpkgStatusD(name):
		if hdr.Size > lim.MaxEntryBytes {
			return &LimitError{Limit: "MaxEntryBytes", Max: lim.MaxEntryBytes, Name: shorten(name)}
		}
		data, err := w.read(nil, hdr.Size, name)
		if err != nil {
			return err
		}
		w.found = true
		return w.c.dpkgStatus(data, "dpkg:"+name, name == dpkgStatusPath)
	}
	if hdr.Size < execMagicLen {
		return nil
	}
	head, err := w.read(nil, execMagicLen, name)
	if err != nil {
		return err
	}
	if !isExecutable(head) {
		return nil // the tar reader skips the rest
	}
	if hdr.Size > lim.MaxEntryBytes {
		return &LimitError{Limit: "MaxEntryBytes", Max: lim.MaxEntryBytes, Name: shorten(name)}
	}
	data, err := w.read(head, hdr.Size-execMagicLen, name)
	if err != nil {
		return err
	}
	if err := w.c.goBinary(bytes.NewReader(data), name); err != nil {
		if !errors.Is(err, errNoBuildInfo) {
			return err
		}
		w.nonGo++
		if len(w.nonGoAt) < maxListedSkipped {
			w.nonGoAt = append(w.nonGoAt, shorten(name))
		}
		return nil
	}
	w.found = true
	return nil
}

// read appends the next n bytes of the current entry to prefix.
func (w *tarWalker) read(prefix []byte, n int64, name string) ([]byte, error) {
	buf := make([]byte, int64(len(prefix))+n)
	copy(buf, prefix)
	if _, err := io.ReadFull(w.tr, buf[len(prefix):]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: tar entry %s is truncated", ErrMalformed, quote(name))
		}
		return nil, readErr("tar entry "+quote(name), err)
	}
	return buf, nil
}

// summarize adds aggregated notes about what the walk skipped.
func (w *tarWalker) summarize() {
	if n := w.nonGo; n > 0 {
		more := ""
		if n > len(w.nonGoAt) {
			more = fmt.Sprintf(" and %d more", n-len(w.nonGoAt))
		}
		w.c.note("%d executables without Go build info not inventoried: %s%s", n, strings.Join(w.nonGoAt, ", "), more)
	}
	if w.links > 0 {
		w.c.note("%d symlinks and hard links not followed (the files they name are inventoried where they are regular entries)", w.links)
	}
	if w.special > 0 {
		w.c.note("%d device, FIFO or other special entries ignored", w.special)
	}
	if !w.found {
		w.c.note("no Go binary or dpkg status database found in the tar archive")
	}
}

func isDpkgStatusD(name string) bool {
	rest, ok := strings.CutPrefix(name, dpkgStatusDir)
	return ok && rest != "" && !strings.Contains(rest, "/") && !strings.HasSuffix(rest, ".md5sums")
}

// cleanEntryName returns the slash-separated path of a tar entry without
// "." components and a leading "./", or a reason to skip the entry: the
// names ztota's bundle installer refuses (absolute, "..", backslash, NUL,
// invalid UTF-8, empty).
func cleanEntryName(raw string) (string, string) {
	switch {
	case raw == "":
		return "", "empty name"
	case !utf8.ValidString(raw):
		return "", "name is not valid UTF-8"
	case strings.IndexByte(raw, 0) >= 0:
		return "", "name contains NUL"
	case strings.IndexByte(raw, '\\') >= 0:
		return "", "name contains a backslash"
	case strings.HasPrefix(raw, "/"):
		return "", "absolute path"
	}
	var parts []string
	for _, p := range strings.Split(raw, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", "'..' component"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "", "empty name"
	}
	return strings.Join(parts, "/"), ""
}

// readErr classifies an error met while reading an archive.
func readErr(what string, err error) error {
	var le *LimitError
	if errors.As(err, &le) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s is truncated", ErrMalformed, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// expandReader bounds a decompressed stream: at most MaxTotalBytes, and
// at most MaxCompressionRatio bytes per compressed byte read from in,
// past RatioGraceBytes.
type expandReader struct {
	r   io.Reader
	in  *countingReader
	out int64
	lim Limits
	err error
}

func (e *expandReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	e.out += int64(n)
	switch {
	case e.out > e.lim.MaxTotalBytes:
		e.err = &LimitError{Limit: "MaxTotalBytes", Max: e.lim.MaxTotalBytes}
	case e.out > satAdd(satMul(e.in.n, e.lim.MaxCompressionRatio), RatioGraceBytes):
		e.err = &LimitError{Limit: "MaxCompressionRatio", Max: e.lim.MaxCompressionRatio}
	}
	if e.err != nil {
		return 0, e.err
	}
	return n, err
}

func satMul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
