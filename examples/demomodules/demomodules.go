// Package demomodules builds the demo's module programs from source
// embedded in the binary and packs each as an application bundle (a tar
// of bin/<module> and VERSION):
//
//	app 1.0.0     text processing with golang.org/x/text v0.21.0 (clean in
//	              Go-2025-07-01, GO-2026-5970 in Go-2026-08-21)
//	app 0.9.0     the backup build: the same service without x/text
//	app 1.1.0     the fix: golang.org/x/text v0.43.0
//	sensor 1.0.0  a second module, standard library only
//	sensor 2.0.0  the same, built to fail its health check
//
// Builds are pinned like internal/vulnfixture's (-trimpath, CGO_ENABLED=0,
// GOFLAGS=-mod=mod, GOTOOLCHAIN=local) and cached in a directory keyed by
// the sources, the build settings and the Go version, so only the first
// run needs the Go module proxy (for golang.org/x/text).
package demomodules

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

//go:embed testdata
var sources embed.FS

// Module sums for the go.sum of each build (the same as internal/vulnfixture's).
const (
	textV021Sum = "golang.org/x/text v0.21.0 h1:zyQAAkrwaneQ066sspRyJaG9VNi/YJ1NfzcGB3hZ/qo=\n" +
		"golang.org/x/text v0.21.0/go.mod h1:4IBbMaMmOPCJ8SecivzSH54+73PCFmPWxNTLm+vZkEQ=\n"
	textV043Sum = "golang.org/x/text v0.43.0 h1:1QivrlhwAsnMOcqgOdl9my7s9OyZl8O5/UGUTJVXoWc=\n" +
		"golang.org/x/text v0.43.0/go.mod h1:hbSIYA/amXcRXTFSZqh8tWHEoqRvvbKPJ2uz/KU+a+s=\n"
)

// Spec is one build of a module program.
type Spec struct {
	Module  string // module name: the program directory and bin/<Module> in the bundle
	Version string
	Tags    string // build tags
	GoMod   string // go.mod
	GoSum   string // go.sum
	// Text says which golang.org/x/text version is linked ("" none).
	Text string
	// Unhealthy builds fail their health check (sensor only).
	Unhealthy bool
	Note      string // what the build is, for people
}

// The demo's builds.
var (
	AppVulnerable = Spec{Module: "app", Version: "1.0.0", Text: "v0.21.0",
		GoMod: "module ztota.demo/app\n\ngo 1.22\n\nrequire golang.org/x/text v0.21.0\n", GoSum: textV021Sum,
		Note: "golang.org/x/text v0.21.0"}
	AppBackup = Spec{Module: "app", Version: "0.9.0", Tags: "notext",
		GoMod: "module ztota.demo/app\n\ngo 1.22\n", Note: "backup build, standard library only"}
	AppFix = Spec{Module: "app", Version: "1.1.0", Text: "v0.43.0",
		GoMod: "module ztota.demo/app\n\ngo 1.26.0\n\nrequire golang.org/x/text v0.43.0\n", GoSum: textV043Sum,
		Note: "golang.org/x/text v0.43.0"}
	Sensor = Spec{Module: "sensor", Version: "1.0.0",
		GoMod: "module ztota.demo/sensor\n\ngo 1.22\n", Note: "standard library only"}
	SensorUnhealthy = Spec{Module: "sensor", Version: "2.0.0", Unhealthy: true,
		GoMod: "module ztota.demo/sensor\n\ngo 1.22\n", Note: "fails its health check"}
)

// All lists the demo's builds.
func All() []Spec { return []Spec{AppVulnerable, AppBackup, AppFix, Sensor, SensorUnhealthy} }

// Built is a built and bundled module program.
type Built struct {
	Spec
	Binary string // the executable
	Bundle string // the tar bundle
	Cached bool   // reused from an earlier build
}

// cacheFormat changes whenever the key or the layout changes.
const cacheFormat = "ztota-demomodules-v2"

// BuildTimeout bounds one go build (module downloads included).
const BuildTimeout = 5 * time.Minute

// DefaultCacheDir is ztota-demo under the user's cache directory (the
// system temporary directory when there is none).
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ztota-demo")
	}
	return filepath.Join(os.TempDir(), "ztota-demo-cache")
}

// ErrProxy wraps a build failure that looks like the Go module proxy
// being unreachable (the first build downloads golang.org/x/text).
var ErrProxy = errors.New("the Go module proxy is unreachable")

// GoTool returns the go command of the running toolchain.
func GoTool() string {
	if r := runtime.GOROOT(); r != "" {
		p := filepath.Join(r, "bin", "go")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// goVersion is the toolchain's GOVERSION GOOS GOARCH.
func goVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, GoTool(), "env", "GOVERSION", "GOOS", "GOARCH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	return strings.Join(strings.Fields(string(out)), " "), nil
}

// files returns the program's sources keyed by file name.
func files(module string) (map[string][]byte, error) {
	dir := path.Join("testdata", module)
	es, err := fs.ReadDir(sources, dir)
	if err != nil {
		return nil, fmt.Errorf("demomodules: %s: %w", module, err)
	}
	out := map[string][]byte{}
	for _, e := range es {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		b, err := sources.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}

func ldflags(s Spec) string {
	f := "-s -w -X main.version=" + s.Version
	if s.Unhealthy {
		f += " -X main.healthy=false"
	}
	return f
}

// key hashes everything that decides the binary.
func key(goVer string, s Spec, src map[string][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n%s\n", cacheFormat, goVer, s.Module, s.Version, s.Tags, ldflags(s))
	fmt.Fprintf(h, "go.mod %d\n%s\ngo.sum %d\n%s\n", len(s.GoMod), s.GoMod, len(s.GoSum), s.GoSum)
	names := make([]string, 0, len(src))
	for n := range src {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(src[n]))
		h.Write(src[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// Build builds (or reuses from cacheDir) every spec and bundles it.
func Build(ctx context.Context, cacheDir string, specs ...Spec) ([]Built, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	goVer, err := goVersion(ctx)
	if err != nil {
		return nil, err
	}
	var out []Built
	for _, s := range specs {
		b, err := buildOne(ctx, cacheDir, goVer, s)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func buildOne(ctx context.Context, cacheDir, goVer string, s Spec) (Built, error) {
	src, err := files(s.Module)
	if err != nil {
		return Built{}, err
	}
	k := key(goVer, s, src)
	base := filepath.Join(cacheDir, s.Module+"-"+s.Version+"-"+k)
	b := Built{Spec: s, Binary: base + ".bin", Bundle: base + ".tar"}
	if fi, err := os.Stat(b.Bundle); err == nil && fi.Size() > 0 {
		if _, err := os.Stat(b.Binary); err == nil {
			b.Cached = true
			return b, nil
		}
	}
	work, err := os.MkdirTemp(cacheDir, "src-"+s.Module+"-")
	if err != nil {
		return Built{}, err
	}
	defer os.RemoveAll(work)
	src["go.mod"] = []byte(s.GoMod)
	if s.GoSum != "" {
		src["go.sum"] = []byte(s.GoSum)
	}
	for n, data := range src {
		if err := os.WriteFile(filepath.Join(work, n), data, 0o644); err != nil {
			return Built{}, err
		}
	}
	bctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	tmp := filepath.Join(work, "out.bin")
	args := []string{"build", "-trimpath", "-ldflags", ldflags(s)}
	if s.Tags != "" {
		args = append(args, "-tags", s.Tags)
	}
	args = append(args, "-o", tmp, ".")
	cmd := exec.CommandContext(bctx, GoTool(), args...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOTOOLCHAIN=local", "GOWORK=off", "GO111MODULE=on", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if len(msg) > 4096 {
			msg = msg[len(msg)-4096:]
		}
		if s.Text != "" && proxyFailure(msg) {
			return Built{}, fmt.Errorf("demomodules: building %s %s needs golang.org/x/text %s: %w: %v: %s", s.Module, s.Version, s.Text, ErrProxy, err, strings.TrimSpace(msg))
		}
		return Built{}, fmt.Errorf("demomodules: building %s %s: %v: %s", s.Module, s.Version, err, strings.TrimSpace(msg))
	}
	tmpTar := filepath.Join(work, "out.tar")
	if err := bundle(tmp, s.Module, s.Version, tmpTar); err != nil {
		return Built{}, err
	}
	// Binary first, bundle last: a bundle present means both are complete.
	if err := os.Rename(tmp, b.Binary); err != nil {
		return Built{}, err
	}
	if err := os.Rename(tmpTar, b.Bundle); err != nil {
		return Built{}, err
	}
	return b, nil
}

// proxyFailure reports whether go build's error output says a module
// could not be downloaded.
func proxyFailure(msg string) bool {
	for _, s := range []string{"proxy.golang.org", "dial tcp", "no such host", "i/o timeout", "connection refused",
		"GOPROXY", "GOFLAGS=-mod=mod", "module lookup disabled", "reading https://", "TLS handshake"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// bundle writes a tar holding bin/<module> and VERSION.
func bundle(bin, module, version, out string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}); err != nil {
		return err
	}
	for _, e := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/" + module, 0o755, data},
		{"VERSION", 0o644, []byte(version + "\n")},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.data)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
