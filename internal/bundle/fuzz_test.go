package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds arbitrary archives to Extract and checks that nothing
// is written outside the destination, that every symlink left behind
// resolves inside it, and that no special file or setuid bit appears.
func FuzzExtract(f *testing.F) {
	f.Add(buildTar(f, tar.FormatPAX, dir("d"), file("d/f", "hello"), symlink("s", "d/f"), hardlink("h", "d/f")))
	f.Add(gz(f, buildTar(f, tar.FormatGNU, file("a", "x"), symlink("b/c", "../a"))))
	f.Add(buildTar(f, tar.FormatPAX, symlink("d/up", ".."), symlink("e", "d/up/..")))
	f.Add(buildTar(f, tar.FormatPAX, file("../x", "x")))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{})
	lim := Limits{MaxFiles: 64, MaxTotalBytes: 1 << 16, MaxFileBytes: 1 << 14, MaxPathLen: 256, MaxDepth: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		out := filepath.Join(parent, "out")
		_, _ = Extract(context.Background(), bytes.NewReader(data), out, lim)
		names, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) > 1 || (len(names) == 1 && names[0].Name() != "out") {
			t.Fatalf("wrote outside the destination: %v", names)
		}
		realOut, err := filepath.EvalSymlinks(out)
		if err != nil {
			return // nothing was created
		}
		err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m := fi.Mode()
			if m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 || m&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice) != 0 {
				t.Fatalf("%s has mode %v", p, m)
			}
			if m&fs.ModeSymlink != 0 {
				if r, err := filepath.EvalSymlinks(p); err == nil && r != realOut && !strings.HasPrefix(r, realOut+string(filepath.Separator)) {
					t.Fatalf("symlink %s resolves outside: %s", p, r)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
