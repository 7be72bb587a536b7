// Package atomicfile is the one way ztota replaces a file durably: write a
// temporary file in the destination's directory, fsync it, rename it over
// the destination and fsync the directory, so that after a crash or power
// loss the path holds either the old content or the whole new content, and
// a completed replacement stays completed.
//
// WriteFile does all of it for content in memory. Create and Commit do it
// for content streamed into the file (an uploaded artifact checked while
// it is written). Rename is for a file already written and fsynced
// elsewhere (a staging directory on the same file system): it renames and
// fsyncs both directories. SyncDir fsyncs one directory.
//
// Packages that inject faults in their file operations (slot, outbox) keep
// their own sequence of steps but end every rename with SyncDir.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Test hooks: the fsync of a file and of a directory.
var (
	fsyncFile = (*os.File).Sync
	fsyncDir  = (*os.File).Sync
)

// File is a temporary file that replaces its destination on Commit. Until
// then the destination is untouched; Abort (or a failed Commit) removes
// the temporary file.
type File struct {
	*os.File
	path string
	done bool
}

// Create makes a temporary file with mode perm in path's directory, to
// replace path on Commit.
func Create(path string, perm os.FileMode) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return &File{File: tmp, path: path}, nil
}

// Commit fsyncs the file, closes it, renames it over its destination and
// fsyncs the directory. On any error before the rename the destination is
// unchanged and the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	f.done = true
	tmp := f.File.Name()
	if err := fsyncFile(f.File); err != nil {
		f.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: fsync %s: %w", f.path, err)
	}
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: close %s: %w", f.path, err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: %w", err)
	}
	return SyncDir(filepath.Dir(f.path))
}

// Abort closes and removes the temporary file; after Commit it does
// nothing. It is safe to defer.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}

// WriteFile replaces path with data (mode perm) atomically and durably.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	return f.Commit()
}

// WriteFrom replaces path with what write writes, atomically and durably;
// if write fails, path is unchanged.
func WriteFrom(path string, perm os.FileMode, write func(w io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f); err != nil {
		return err
	}
	return f.Commit()
}

// Rename renames oldpath to newpath and fsyncs newpath's directory (and
// oldpath's, when it is another one), so the rename survives a crash. The
// file itself must already be fsynced by the caller.
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	nd, od := filepath.Dir(newpath), filepath.Dir(oldpath)
	if err := SyncDir(nd); err != nil {
		return err
	}
	if od != nd {
		return SyncDir(od)
	}
	return nil
}

// SyncDir fsyncs the directory dir, making the creation, removal and
// renaming of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := fsyncDir(d); err != nil {
		return fmt.Errorf("atomicfile: fsync directory %s: %w", dir, err)
	}
	return nil
}
