package inventory

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/vulnref"
)

// testModule is the source of the Go program the tests build. It requires
// an old golang.org/x/text (linked through language), replaces
// golang.org/x/sync v0.20.0 by v0.24.0, and replaces example.com/localdep
// by a local directory.
var testModule = map[string]string{
	"go.mod": `module example.com/app

go 1.22

require (
	example.com/localdep v1.2.3
	golang.org/x/sync v0.20.0
	golang.org/x/text v0.3.5
)

replace golang.org/x/sync => golang.org/x/sync v0.24.0

replace example.com/localdep => ./localdep
`,
	"main.go": `package main

import (
	"fmt"

	"example.com/localdep"
	"golang.org/x/sync/errgroup"
	"golang.org/x/text/language"
)

func main() {
	var g errgroup.Group
	g.Go(func() error {
		fmt.Println(language.English.String(), localdep.Name)
		return nil
	})
	_ = g.Wait()
}
`,
	"localdep/go.mod":      "module example.com/localdep\n\ngo 1.22\n",
	"localdep/localdep.go": "// Package localdep is a local dependency.\npackage localdep\n\n// Name names it.\nconst Name = \"local\"\n",
}

// taggedModule is a program with no dependencies, committed to a Git
// repository tagged v1.4.0, so Go stamps its main module version.
var taggedModule = map[string]string{
	"go.mod":  "module example.com/tagged\n\ngo 1.22\n",
	"main.go": "package main\n\nfunc main() { println(\"tagged\") }\n",
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// testBinary builds the test program for goos/goarch ("" for the host)
// and returns the path of the executable.
func testBinary(t testing.TB, goos, goarch string) string {
	return buildProgram(t, testModule, "", goos, goarch)
}

// buildProgram builds the program whose files are given, for goos/goarch
// ("" for the host), and returns the path of the executable. If tag is
// set, the source is committed to a new Git repository with that tag and
// built with VCS stamping. Builds are cached under os.TempDir(), keyed by
// a hash of the source, the tag, the Go version and the target, so reruns
// are fast.
func buildProgram(t testing.TB, files map[string]string, tag, goos, goarch string) string {
	t.Helper()
	if goos == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	h := sha256.New()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h.Write([]byte(n + "\x00" + files[n] + "\x00"))
	}
	h.Write([]byte(tag + "\x00" + runtime.Version() + "\x00" + goos + "\x00" + goarch))
	key := hex.EncodeToString(h.Sum(nil))[:24]
	if p, ok := buildCache[key]; ok {
		return p
	}
	cacheDir := filepath.Join(os.TempDir(), "ztota-inventory-testbin", key)
	bin := filepath.Join(cacheDir, "app")
	if fi, err := os.Stat(bin); err == nil && fi.Size() > 0 {
		buildCache[key] = bin
		return bin
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.MkdirTemp(cacheDir, "src-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(src)
	for n, body := range files {
		p := filepath.Join(src, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	buildvcs := "false"
	if tag != "" {
		gitEnv := append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=ztota-test", "GIT_AUTHOR_EMAIL=test@example.org",
			"GIT_COMMITTER_NAME=ztota-test", "GIT_COMMITTER_EMAIL=test@example.org")
		for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-q", "-m", "test program"}, {"tag", tag}} {
			cmd := exec.Command("git", args...)
			cmd.Dir, cmd.Env = src, gitEnv
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
		buildvcs = "true"
	}
	tmp := filepath.Join(cacheDir, filepath.Base(src)+".out")
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"GOFLAGS=-mod=mod -buildvcs="+buildvcs, "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local",
		"GOOS="+goos, "GOARCH="+goarch)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a test Go program for %s/%s (the main one needs the Go module proxy for golang.org/x/text v0.3.5): %v\n%s", goos, goarch, err, out)
	}
	t.Logf("built test program for %s/%s in %v", goos, goarch, time.Since(start).Round(time.Millisecond))
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	buildCache[key] = bin
	return bin
}

// wantStdlib is the stdlib version the test program records.
func wantStdlib(t testing.TB) string {
	t.Helper()
	v, ok := StdlibVersion(runtime.Version())
	if !ok {
		t.Fatalf("StdlibVersion(%q) failed", runtime.Version())
	}
	return v
}

// wantBinaryComponents are the components of the test program found at loc.
func wantBinaryComponents(t testing.TB, loc string) []vulnref.Component {
	std := wantStdlib(t)
	return []vulnref.Component{
		{Ecosystem: "Go", Name: "example.com/localdep", Version: "1.2.3", PURL: "pkg:golang/example.com/localdep@v1.2.3", Location: loc, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
		{Ecosystem: "Go", Name: "golang.org/x/sync", Version: "0.24.0", PURL: "pkg:golang/golang.org/x/sync@v0.24.0", Location: loc, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
		{Ecosystem: "Go", Name: "golang.org/x/text", Version: "0.3.5", PURL: "pkg:golang/golang.org/x/text@v0.3.5", Location: loc, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
		{Ecosystem: "Go", Name: "stdlib", Version: std, PURL: "pkg:golang/stdlib@v" + std, Location: loc, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
	}
}

// wantDpkgComponents are the packages listed by testdata/dpkg/status.
func wantDpkgComponents(loc string) []vulnref.Component {
	return []vulnref.Component{
		{Ecosystem: "Debian", Name: "base-files", Version: "12.4+deb12u5", PURL: "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64", Location: loc},
		{Ecosystem: "Debian", Name: "busybox", Version: "1:1.35.0-4+b3", PURL: "pkg:deb/debian/busybox@1:1.35.0-4%2Bb3?arch=amd64&upstream=busybox%401:1.35.0-4", Location: loc},
		{Ecosystem: "Debian", Name: "ca-certificates", Version: "20230311", PURL: "pkg:deb/debian/ca-certificates@20230311?arch=all", Location: loc},
		{Ecosystem: "Debian", Name: "libc6", Version: "2.36-9+deb12u4", PURL: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&upstream=glibc", Location: loc},
		{Ecosystem: "Debian", Name: "libssl3", Version: "3.0.11-1~deb12u2", PURL: "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl", Location: loc},
		{Ecosystem: "Debian", Name: "zlib1g", Version: "1:1.2.13.dfsg-1", PURL: "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&upstream=zlib", Location: loc},
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entry is one tar entry for makeTar.
type entry struct {
	name     string
	typ      byte   // tar.TypeReg if zero
	body     []byte // file contents
	linkname string
	size     int64 // declared size, if not len(body)
}

// makeTar builds a tar archive, gzip-compressed if gz. Declared sizes that
// differ from the body are written without validation, to build broken
// archives.
func makeTar(t testing.TB, gz bool, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.body))
		if e.size != 0 {
			size = e.size
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o755, Size: size, Linkname: e.linkname, Format: tar.FormatPAX, ModTime: time.Unix(1700000000, 0)}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		var one bytes.Buffer
		tw := tar.NewWriter(&one)
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("header %q: %v", e.name, err)
		}
		if typ == tar.TypeReg && e.size == 0 {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
			if err := tw.Flush(); err != nil {
				t.Fatal(err)
			}
			buf.Write(one.Bytes())
			continue
		}
		// A header only (WriteHeader has written it); a raw body follows.
		buf.Write(one.Bytes())
		buf.Write(e.body)
	}
	buf.Write(make([]byte, 2*blockSize))
	if !gz {
		return buf.Bytes()
	}
	return gzipBytes(t, buf.Bytes())
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// inventoryOf runs FromReader on b.
func inventoryOf(b []byte, lim Limits) (*Inventory, error) {
	return FromReader(bytes.NewReader(b), int64(len(b)), lim)
}

// hasNote reports whether a note contains all the given fragments.
func hasNote(notes []string, fragments ...string) bool {
	for _, n := range notes {
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(n, f)
		}
		if ok {
			return true
		}
	}
	return false
}
