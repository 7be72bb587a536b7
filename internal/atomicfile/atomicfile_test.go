package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// recordSyncs replaces the fsync hooks for one test: it records which
// directories were fsynced and fails file fsyncs with failFile when set.
func recordSyncs(t *testing.T, failFile error) *[]string {
	t.Helper()
	var dirs []string
	of, od := fsyncFile, fsyncDir
	t.Cleanup(func() { fsyncFile, fsyncDir = of, od })
	fsyncFile = func(f *os.File) error {
		if failFile != nil {
			return failFile
		}
		return f.Sync()
	}
	fsyncDir = func(d *os.File) error {
		dirs = append(dirs, d.Name())
		return d.Sync()
	}
	return &dirs
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReplacesAndFsyncsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	dirs := recordSyncs(t, nil)
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Fatalf("content %q, want %q", b, content)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if !slices.Equal(*dirs, []string{dir, dir}) {
		t.Fatalf("directories fsynced: %v, want %s twice", *dirs, dir)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"state.json"}) {
		t.Fatalf("directory holds %v", got)
	}
}

// TestFailedWriteLeavesTheOldFile performs the failures a replacement can
// meet before its rename — a writer error, a failed fsync (a full or
// failing disk), a rename onto a directory — and checks each leaves the
// old content in place and no temporary file behind.
func TestFailedWriteLeavesTheOldFile(t *testing.T) {
	errDisk := errors.New("injected: no space left on device")
	t.Run("writer fails", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte("old"), 0o644)
		errWrite := errors.New("injected write error")
		err := WriteFrom(p, 0o644, func(w io.Writer) error {
			w.Write([]byte("half of the ne"))
			return errWrite
		})
		if !errors.Is(err, errWrite) {
			t.Fatalf("error %v, want the writer's", err)
		}
		checkOld(t, dir, p)
	})
	t.Run("fsync fails", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte("old"), 0o644)
		recordSyncs(t, errDisk)
		if err := WriteFile(p, []byte("new content"), 0o644); !errors.Is(err, errDisk) {
			t.Fatalf("error %v, want the fsync's", err)
		}
		checkOld(t, dir, p)
	})
	t.Run("rename fails", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		os.MkdirAll(filepath.Join(p, "sub"), 0o755) // a non-empty directory cannot be renamed over
		os.WriteFile(filepath.Join(p, "sub", "x"), []byte("old"), 0o644)
		if err := WriteFile(p, []byte("new"), 0o644); err == nil {
			t.Fatal("renamed a file over a non-empty directory")
		}
		if b, err := os.ReadFile(filepath.Join(p, "sub", "x")); err != nil || string(b) != "old" {
			t.Fatalf("old content %q, %v", b, err)
		}
		if got := entries(t, dir); !slices.Equal(got, []string{"f"}) {
			t.Fatalf("directory holds %v", got)
		}
	})
	t.Run("abort", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte("old"), 0o644)
		f, err := Create(p, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("new"))
		f.Abort()
		if err := f.Commit(); err == nil {
			t.Fatal("committed after abort")
		}
		checkOld(t, dir, p)
	})
}

func checkOld(t *testing.T, dir, p string) {
	t.Helper()
	if b, err := os.ReadFile(p); err != nil || string(b) != "old" {
		t.Fatalf("content %q, %v: the old file was not kept", b, err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("directory holds %v: a temporary file was left", got)
	}
}

func TestRenameFsyncsBothDirectories(t *testing.T) {
	root := t.TempDir()
	src, dst := filepath.Join(root, "tmp"), filepath.Join(root, "osv")
	os.Mkdir(src, 0o755)
	os.Mkdir(dst, 0o755)
	os.WriteFile(filepath.Join(src, "a"), []byte("x"), 0o644)
	dirs := recordSyncs(t, nil)
	if err := Rename(filepath.Join(src, "a"), filepath.Join(dst, "a")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(*dirs, []string{dst, src}) {
		t.Fatalf("directories fsynced %v, want %s then %s", *dirs, dst, src)
	}
	if err := Rename(filepath.Join(src, "missing"), filepath.Join(dst, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing source: %v", err)
	}
}
