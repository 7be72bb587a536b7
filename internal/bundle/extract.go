package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

type kind uint8

const (
	kindImplicitDir kind = iota + 1
	kindDir
	kindFile
	kindSymlink
)

// Extract reads a tar or tar.gz bundle from r and writes it under dir,
// which must not exist or be an empty directory. It refuses unsafe
// entries and bounds every size by lim (see the package documentation).
// The tar stream is read to its end, trailer included, so a gzip checksum
// is verified and every byte of r that Extract consumed was examined.
func Extract(ctx context.Context, r io.Reader, dir string, lim Limits) (Stats, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return Stats{}, err
	}
	if err := prepareDir(dir); err != nil {
		return Stats{}, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("bundle: open destination: %w", err)
	}
	defer root.Close()

	stream, err := openStream(ctx, r)
	if err != nil {
		return Stats{}, err
	}
	br := &boundedReader{r: stream, max: lim.streamLimit()}
	x := &extractor{ctx: ctx, root: root, lim: lim, kinds: map[string]kind{}, files: map[string]Entry{}, dirs: []string{"."}}
	err = x.run(tar.NewReader(br), br)
	x.stats.StreamBytes = br.n
	if br.exceeded {
		return x.stats, br.err()
	}
	if err != nil {
		return x.stats, err
	}
	if err := x.syncDirs(); err != nil {
		return x.stats, err
	}
	return x.stats, nil
}

func prepareDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("%w: %v", ErrDestination, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDestination, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is a %v", ErrDestination, dir, fi.Mode().Type())
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDestination, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return fmt.Errorf("%w: %s holds %q", ErrDestination, dir, names[0])
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("%w: %v", ErrDestination, err)
	}
	return nil
}

type extractor struct {
	ctx     context.Context
	root    *os.Root
	lim     Limits
	kinds   map[string]kind
	files   map[string]Entry // regular files written, for hard links
	dirs    []string         // directories created, "." first
	entries int
	stats   Stats
}

func (x *extractor) run(tr *tar.Reader, stream io.Reader) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.readErr(err)
		}
		x.entries++
		if x.entries > x.lim.MaxFiles {
			return &LimitError{Limit: "MaxFiles", Max: int64(x.lim.MaxFiles), Name: truncate(hdr.Name)}
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Read the trailer (padding, the gzip checksum) within the bound.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return x.readErr(err)
	}
	return nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return unsafeEntry(hdr.Name, "device node")
	case tar.TypeFifo:
		return unsafeEntry(hdr.Name, "FIFO")
	case tar.TypeGNUSparse:
		return unsafeEntry(hdr.Name, "sparse file")
	default:
		return unsafeEntry(hdr.Name, fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
	}
	parts, err := cleanName(hdr.Name, x.lim)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		if hdr.Typeflag == tar.TypeDir {
			return nil // "./": the destination itself
		}
		return unsafeEntry(hdr.Name, "empty name")
	}
	name := strings.Join(parts, "/")
	if err := x.parents(hdr.Name, parts); err != nil {
		return err
	}
	if k, ok := x.kinds[name]; ok {
		if !(k == kindImplicitDir && hdr.Typeflag == tar.TypeDir) {
			return unsafeEntry(hdr.Name, "duplicate path")
		}
		x.kinds[name] = kindDir
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(name, kindDir)
	case tar.TypeSymlink:
		return x.symlink(hdr, parts, name)
	case tar.TypeLink:
		return x.link(hdr, name)
	default:
		return x.file(hdr, name, r)
	}
}

// parents checks that no parent of the entry is a symlink or a file, and
// creates missing parents.
func (x *extractor) parents(raw string, parts []string) error {
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		switch x.kinds[p] {
		case kindSymlink:
			return unsafeEntry(raw, fmt.Sprintf("path goes through symlink %q", p))
		case kindFile:
			return unsafeEntry(raw, fmt.Sprintf("path goes through file %q", p))
		case 0:
			if err := x.mkdir(p, kindImplicitDir); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *extractor) mkdir(name string, k kind) error {
	if err := x.root.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("bundle: create directory %q: %w", name, err)
	}
	// Set the mode through the descriptor, whatever the umask was.
	f, err := x.root.Open(name)
	if err != nil {
		return fmt.Errorf("bundle: open directory %q: %w", name, err)
	}
	err = f.Chmod(fs.ModeDir | 0o755)
	f.Close()
	if err != nil {
		return fmt.Errorf("bundle: chmod directory %q: %w", name, err)
	}
	x.kinds[name] = k
	x.dirs = append(x.dirs, name)
	x.stats.Dirs++
	x.stats.Entries = append(x.stats.Entries, Entry{Name: name, Type: TypeDir, Mode: 0o755})
	return nil
}

func (x *extractor) symlink(hdr *tar.Header, parts []string, name string) error {
	if p := symlinkProblem(parts, hdr.Linkname, x.lim); p != "" {
		return unsafeEntry(hdr.Name, p)
	}
	if err := x.root.Symlink(hdr.Linkname, name); err != nil {
		return fmt.Errorf("bundle: create symlink %q: %w", name, err)
	}
	x.kinds[name] = kindSymlink
	x.stats.Symlinks++
	x.stats.Entries = append(x.stats.Entries, Entry{Name: name, Type: TypeSymlink, Target: hdr.Linkname})
	return nil
}

func (x *extractor) link(hdr *tar.Header, name string) error {
	tparts, err := cleanName(hdr.Linkname, x.lim)
	if err != nil {
		var ue *UnsafeEntryError
		if errors.As(err, &ue) {
			return unsafeEntry(hdr.Name, "hard link target: "+ue.Reason)
		}
		return err
	}
	target := strings.Join(tparts, "/")
	e, ok := x.files[target]
	if !ok {
		return unsafeEntry(hdr.Name, "hard link to something other than an earlier regular file")
	}
	if err := x.root.Link(target, name); err != nil {
		return fmt.Errorf("bundle: create hard link %q: %w", name, err)
	}
	x.kinds[name] = kindFile
	e.Name = name
	x.files[name] = e
	x.stats.Links++
	x.stats.Entries = append(x.stats.Entries, e)
	return nil
}

func (x *extractor) file(hdr *tar.Header, name string, r io.Reader) error {
	if hdr.Size < 0 {
		return unsafeEntry(hdr.Name, "negative size")
	}
	if hdr.Size > x.lim.MaxFileBytes {
		return &LimitError{Limit: "MaxFileBytes", Max: x.lim.MaxFileBytes, Name: name}
	}
	if hdr.Size > x.lim.MaxTotalBytes-x.stats.Bytes {
		return &LimitError{Limit: "MaxTotalBytes", Max: x.lim.MaxTotalBytes, Name: name}
	}
	mode := fs.FileMode(hdr.Mode)&0o755 | 0o400
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("bundle: create %q: %w", name, err)
	}
	x.kinds[name] = kindFile
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{x.ctx, r}, hdr.Size))
	x.stats.Bytes += n
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("%w: %q is truncated", ErrFormat, name)
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("bundle: write %q: %w", name, err)
		}
		return x.readErr(err)
	}
	e := Entry{Name: name, Type: TypeFile, Mode: mode, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	x.files[name] = e
	x.stats.Files++
	x.stats.Entries = append(x.stats.Entries, e)
	return nil
}

// readErr classifies an error met while reading the archive.
func (x *extractor) readErr(err error) error {
	var le *LimitError
	switch {
	case x.ctx.Err() != nil:
		return x.ctx.Err()
	case errors.As(err, &le), errors.Is(err, ErrFormat):
		return err
	}
	return fmt.Errorf("%w: %w", ErrFormat, err)
}

// syncDirs fsyncs every directory created, deepest first.
func (x *extractor) syncDirs() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		f, err := x.root.Open(x.dirs[i])
		if err != nil {
			return fmt.Errorf("bundle: open directory %q for sync: %w", x.dirs[i], err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("bundle: sync directory %q: %w", x.dirs[i], err)
		}
	}
	return nil
}
