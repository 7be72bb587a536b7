package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCorrectBundleRoundTrips(t *testing.T) {
	ents := []ent{
		dir("./"),
		dir("./bin/"),
		{typ: tar.TypeReg, name: "./bin/app", body: "#!/bin/sh\necho hi\n", mode: 0o6755}, // setuid+setgid dropped
		{typ: tar.TypeReg, name: "etc/conf/app.toml", body: "x = 1\n", mode: 0o666},       // world write dropped
		{typ: tar.TypeReg, name: "secret", body: "s", mode: 0o000},                        // owner read added
		symlink("current", "bin/app"),
		symlink("etc/conf/up", "../../bin"),
		hardlink("bin/app-again", "./bin/app"),
		dir("etc/"), // explicit after implicit creation: allowed
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"tar", buildTar(t, tar.FormatPAX, ents...)},
		{"tar.gz", gz(t, buildTar(t, tar.FormatGNU, ents...))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, st, err := extractTo(t, tc.data, Limits{})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			checkFile(t, out, "bin/app", "#!/bin/sh\necho hi\n", 0o755)
			checkFile(t, out, "etc/conf/app.toml", "x = 1\n", 0o644)
			checkFile(t, out, "secret", "s", 0o400)
			checkFile(t, out, "bin/app-again", "#!/bin/sh\necho hi\n", 0o755)
			checkFile(t, out, "current", "#!/bin/sh\necho hi\n", 0o755) // through the symlink
			if target, err := os.Readlink(filepath.Join(out, "etc/conf/up")); err != nil || target != "../../bin" {
				t.Fatalf("symlink etc/conf/up = %q, %v", target, err)
			}
			for _, d := range []string{".", "bin", "etc", "etc/conf"} {
				fi, err := os.Lstat(filepath.Join(out, d))
				if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
					t.Fatalf("directory %s: %v %v", d, fi.Mode(), err)
				}
			}
			if st.Files != 3 || st.Links != 1 || st.Symlinks != 2 || st.Dirs != 3 {
				t.Fatalf("stats = %+v", st)
			}
			if st.Bytes != int64(len("#!/bin/sh\necho hi\n")+len("x = 1\n")+1) {
				t.Fatalf("bytes = %d", st.Bytes)
			}
			sum := sha256.Sum256([]byte("#!/bin/sh\necho hi\n"))
			var found bool
			for _, e := range st.Entries {
				if e.Name == "bin/app-again" {
					found = e.Type == TypeFile && e.SHA256 == hex.EncodeToString(sum[:]) && e.Mode == 0o755
				}
			}
			if !found {
				t.Fatalf("entries lack a correct record of the hard link: %+v", st.Entries)
			}
		})
	}
}

func checkFile(t *testing.T, root, name, body string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(root, name)
	b, err := os.ReadFile(p)
	if err != nil || string(b) != body {
		t.Fatalf("%s = %q, %v; want %q", name, b, err, body)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != perm {
		t.Fatalf("%s mode = %v, want %v", name, fi.Mode(), perm)
	}
}

func TestDotDotComponentIsRefused(t *testing.T) {
	for _, name := range []string{"../evil", "a/../../evil", "a/..", ".."} {
		ue := wantUnsafe(t, buildTar(t, tar.FormatPAX, file(name, "x")))
		if ue.Reason != "'..' component" {
			t.Fatalf("%s: reason %q", name, ue.Reason)
		}
	}
}

func TestAbsolutePathIsRefused(t *testing.T) {
	wantUnsafe(t, buildTar(t, tar.FormatPAX, file("/etc/passwd", "root::0:0")))
}

func TestBackslashNameIsRefused(t *testing.T) {
	wantUnsafe(t, buildTar(t, tar.FormatPAX, file(`..\..\evil`, "x")))
}

func TestAbsoluteSymlinkIsRefused(t *testing.T) {
	wantUnsafe(t, buildTar(t, tar.FormatPAX, symlink("passwd", "/etc/passwd")))
}

func TestSymlinkEscapingWithDotDotIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, target string }{
		{"up", ".."},
		{"up", "../etc"},
		{"a/b/up", "../../../etc"},
	} {
		ue := wantUnsafe(t, buildTar(t, tar.FormatPAX, symlink(tc.name, tc.target)))
		if ue.Reason != "symlink target escapes the bundle" {
			t.Fatalf("%s -> %s: reason %q", tc.name, tc.target, ue.Reason)
		}
	}
}

// A lexical check would accept "d/up/.." (it cleans to "d"), but the
// kernel resolves d/up first, lands on the root and then climbs out.
func TestSymlinkClimbingBackThroughAnotherSymlinkIsRefused(t *testing.T) {
	ue := wantUnsafe(t, buildTar(t, tar.FormatPAX,
		symlink("d/up", ".."),
		symlink("escape", "d/up/.."),
	))
	if ue.Name != "escape" {
		t.Fatalf("refused %q, want escape", ue.Name)
	}
}

func TestWriteThroughEarlierSymlinkIsRefused(t *testing.T) {
	for _, ents := range [][]ent{
		{dir("real"), symlink("link", "real"), file("link/planted", "x")},
		{symlink("link", "."), dir("link/sub")},
		{file("target", "t"), symlink("link", "."), hardlink("link/h", "target")},
	} {
		ue := wantUnsafe(t, buildTar(t, tar.FormatPAX, ents...))
		if !strings.Contains(ue.Reason, "through symlink") {
			t.Fatalf("reason %q", ue.Reason)
		}
	}
}

func TestWriteThroughEarlierFileIsRefused(t *testing.T) {
	wantUnsafe(t, buildTar(t, tar.FormatPAX, file("f", "x"), file("f/g", "y")))
}

func TestHardLinkOutsideOrToNonFileIsRefused(t *testing.T) {
	for _, ents := range [][]ent{
		{hardlink("h", "../../etc/shadow")},
		{hardlink("h", "/etc/shadow")},
		{hardlink("h", "later"), file("later", "x")},
		{dir("d"), hardlink("h", "d")},
		{file("f", "x"), symlink("s", "f"), hardlink("h", "s")},
	} {
		wantUnsafe(t, buildTar(t, tar.FormatPAX, ents...))
	}
}

func TestDeviceNodeIsRefused(t *testing.T) {
	for _, typ := range []byte{tar.TypeChar, tar.TypeBlock} {
		ue := wantUnsafe(t, buildTar(t, tar.FormatPAX, special(typ, "dev/sda")))
		if ue.Reason != "device node" {
			t.Fatalf("reason %q", ue.Reason)
		}
	}
}

func TestFIFOIsRefused(t *testing.T) {
	wantUnsafe(t, buildTar(t, tar.FormatPAX, special(tar.TypeFifo, "pipe")))
}

// Tar has no socket type; sockets, sparse files and vendor types all meet
// the unknown-type refusal.
func TestUnknownEntryTypeIsRefused(t *testing.T) {
	wantUnsafe(t, buildTar(t, tar.FormatPAX, special('X', "socket")))
}

func TestDuplicatePathIsRefused(t *testing.T) {
	for _, ents := range [][]ent{
		{file("f", "good"), file("f", "evil")},
		{file("f", "good"), file("./f", "evil")},
		{dir("d"), dir("d/")},
		{file("d/f", "x"), file("d", "x")},
		{file("f", "x"), symlink("f", "g")},
	} {
		ue := wantUnsafe(t, buildTar(t, tar.FormatPAX, ents...))
		if ue.Reason != "duplicate path" {
			t.Fatalf("reason %q", ue.Reason)
		}
	}
}

func TestInvalidUTF8NameIsRefused(t *testing.T) {
	ue := wantUnsafe(t, buildTar(t, tar.FormatGNU, file("bad\xff\xfe", "x")))
	if ue.Reason != "name is not valid UTF-8" {
		t.Fatalf("reason %q", ue.Reason)
	}
}

// Tar headers end names at NUL and PAX refuses NUL in paths, so the name
// check is exercised directly.
func TestNULInNameIsRefused(t *testing.T) {
	_, err := cleanName("a\x00/../../etc", DefaultLimits)
	var ue *UnsafeEntryError
	if !errors.As(err, &ue) || ue.Reason != "name contains NUL" {
		t.Fatalf("cleanName error = %v", err)
	}
}

func TestTooManyFilesIsRefused(t *testing.T) {
	ents := make([]ent, 6)
	for i := range ents {
		ents[i] = file(string(rune('a'+i)), "x")
	}
	wantLimit(t, buildTar(t, tar.FormatPAX, ents...), Limits{MaxFiles: 5}, "MaxFiles")
}

func TestFileOverMaxFileBytesIsRefused(t *testing.T) {
	wantLimit(t, buildTar(t, tar.FormatPAX, file("big", strings.Repeat("x", 101))), Limits{MaxFileBytes: 100}, "MaxFileBytes")
}

func TestFilesOverMaxTotalBytesAreRefused(t *testing.T) {
	wantLimit(t, buildTar(t, tar.FormatPAX, file("a", strings.Repeat("x", 60)), file("b", strings.Repeat("x", 60))),
		Limits{MaxTotalBytes: 100}, "MaxTotalBytes")
}

func TestLongPathIsRefused(t *testing.T) {
	wantLimit(t, buildTar(t, tar.FormatPAX, file(strings.Repeat("n", 65), "x")), Limits{MaxPathLen: 64}, "MaxPathLen")
}

func TestDeepPathIsRefused(t *testing.T) {
	wantLimit(t, buildTar(t, tar.FormatPAX, file(strings.Repeat("d/", 5)+"f", "x")), Limits{MaxDepth: 5}, "MaxDepth")
}

// A gzip member of a few dozen KiB that inflates to 32 MiB: the declared
// size is refused before anything is written.
func TestGzipBombDeclaredSizeIsRefusedBeforeWriting(t *testing.T) {
	bomb := gz(t, buildTar(t, tar.FormatPAX, file("zeros", string(make([]byte, 32<<20)))))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes; the test wants a highly compressible input", len(bomb))
	}
	out, st, err := extractTo(t, bomb, Limits{MaxTotalBytes: 1 << 20})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "MaxTotalBytes" {
		t.Fatalf("Extract error = %v, want MaxTotalBytes", err)
	}
	if st.Bytes != 0 || st.StreamBytes > 64<<10 {
		t.Fatalf("bomb was inflated before refusal: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(out, "zeros")); !os.IsNotExist(err) {
		t.Fatalf("bomb file was created: %v", err)
	}
}

// A small valid bundle followed by 32 MiB of compressed zeros: the
// decompressed byte count stops it at the stream bound.
func TestGzipBombInTrailerIsCutAtStreamBound(t *testing.T) {
	raw := buildTar(t, tar.FormatPAX, file("ok", "fine"))
	raw = append(raw, make([]byte, 32<<20)...)
	bomb := gz(t, raw)
	lim := Limits{MaxTotalBytes: 1 << 20, MaxFiles: 10}
	_, st, err := extractTo(t, bomb, lim)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("Extract error = %v, want ErrLimit", err)
	}
	l, _ := lim.withDefaults()
	if st.StreamBytes > l.streamLimit() {
		t.Fatalf("read %d decompressed bytes, bound is %d", st.StreamBytes, l.streamLimit())
	}
}

func TestGzipCorruptionIsRefused(t *testing.T) {
	b := gz(t, buildTar(t, tar.FormatPAX, file("a", strings.Repeat("abc", 1000))))
	b[len(b)-6] ^= 0xff // inside the CRC32 trailer
	_, _, err := extractTo(t, b, Limits{})
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("Extract error = %v, want ErrFormat", err)
	}
}

func TestTruncatedArchiveIsRefused(t *testing.T) {
	b := buildTar(t, tar.FormatPAX, file("a", strings.Repeat("abc", 1000)))
	_, _, err := extractTo(t, b[:1200], Limits{})
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("Extract error = %v, want ErrFormat", err)
	}
}

func TestNonEmptyDestinationIsRefused(t *testing.T) {
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Extract(context.Background(), bytes.NewReader(buildTar(t, tar.FormatPAX, file("a", "x"))), dst, Limits{})
	if !errors.Is(err, ErrDestination) {
		t.Fatalf("Extract error = %v, want ErrDestination", err)
	}
}

func TestSymlinkDestinationIsRefused(t *testing.T) {
	parent := t.TempDir()
	real := filepath.Join(parent, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(parent, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := Extract(context.Background(), bytes.NewReader(buildTar(t, tar.FormatPAX, file("a", "x"))), filepath.Join(parent, "link"), Limits{})
	if !errors.Is(err, ErrDestination) {
		t.Fatalf("Extract error = %v, want ErrDestination", err)
	}
}

func TestCanceledContextStopsExtraction(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Extract(ctx, bytes.NewReader(buildTar(t, tar.FormatPAX, file("a", "x"))), filepath.Join(t.TempDir(), "out"), Limits{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Extract error = %v, want context.Canceled", err)
	}
}

func TestNegativeLimitIsRejected(t *testing.T) {
	_, err := Extract(context.Background(), bytes.NewReader(nil), filepath.Join(t.TempDir(), "out"), Limits{MaxFiles: -1})
	if err == nil {
		t.Fatal("negative limit accepted")
	}
}
