package vulnfixture

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
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

// Limits on the work the package does on behalf of its callers.
const (
	// BuildTimeout bounds one go build (module downloads included).
	BuildTimeout = 5 * time.Minute
	// InstallTimeout bounds the go install of govulncheck.
	InstallTimeout = 5 * time.Minute
	// ScanTimeout bounds one govulncheck run.
	ScanTimeout = 2 * time.Minute
	// MaxCommandOutput bounds the output kept from one go or govulncheck
	// command (stdout and stderr each).
	MaxCommandOutput = 64 << 20
	// maxErrorOutput is how much of a failing command's stderr goes into
	// the returned error.
	maxErrorOutput = 4 << 10
)

//go:embed testdata/programs
var programsFS embed.FS

const programsRoot = "testdata/programs"

// Files of one fixture program inside its embedded directory, and the
// names they take in the scratch module directory.
var programFiles = []struct{ embedded, onDisk string }{
	{"main.go", "main.go"},
	{"go.mod.in", "go.mod"},
	{"go.sum.in", "go.sum"},
}

// cacheFormat changes whenever the cache key or layout changes.
const cacheFormat = "ztota-vulnfixture-cache-v1"

// Program is one fixture program built into a binary.
type Program struct {
	// Name is the program's directory name under testdata/programs.
	Name string
	// Modules maps each dependency module linked into the binary (as its
	// build information records it) to its version, with the leading "v".
	Modules map[string]string
	// Path is the built binary.
	Path string
}

// DefaultCacheDir returns the directory fixtures and govulncheck are cached
// in by default: ztota-vulnfixture under the system temporary directory.
func DefaultCacheDir() string {
	return filepath.Join(os.TempDir(), "ztota-vulnfixture")
}

// Names returns the names of the embedded fixture programs, sorted.
func Names() ([]string, error) {
	entries, err := fs.ReadDir(programsFS, programsRoot)
	if err != nil {
		return nil, fmt.Errorf("vulnfixture: list embedded programs: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Source returns the embedded source files of the named program, keyed by
// the name each takes on disk (main.go, go.mod, go.sum).
func Source(name string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(programFiles))
	for _, f := range programFiles {
		b, err := programsFS.ReadFile(path.Join(programsRoot, name, f.embedded))
		if err != nil {
			return nil, fmt.Errorf("vulnfixture: program %q: %w", name, err)
		}
		out[f.onDisk] = b
	}
	return out, nil
}

// goCommand returns the go command of the running toolchain.
func goCommand() (string, error) {
	exe := "go"
	if runtime.GOOS == "windows" {
		exe = "go.exe"
	}
	var roots []string
	// The running toolchain's root comes first: its go command built this
	// process, so fixtures are built by the same Go release.
	if r := runtime.GOROOT(); r != "" {
		roots = append(roots, r)
	}
	if r := os.Getenv("GOROOT"); r != "" {
		roots = append(roots, r)
	}
	for _, r := range roots {
		p := filepath.Join(r, "bin", exe)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("vulnfixture: no go command found under GOROOT or on PATH: %w", err)
	}
	return p, nil
}

// toolchain describes the go command used for builds; it is part of every
// cache key.
type toolchain struct {
	goCmd, version, goos, goarch string
}

func currentToolchain(ctx context.Context) (toolchain, error) {
	goCmd, err := goCommand()
	if err != nil {
		return toolchain{}, err
	}
	out, err := run(ctx, "", nil, goCmd, "env", "GOVERSION", "GOOS", "GOARCH")
	if err != nil {
		return toolchain{}, fmt.Errorf("vulnfixture: go env: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return toolchain{}, fmt.Errorf("vulnfixture: go env printed %q, want GOVERSION GOOS GOARCH", out)
	}
	return toolchain{goCmd: goCmd, version: f[0], goos: f[1], goarch: f[2]}, nil
}

// buildEnv returns the environment for go build: the caller's environment
// (GOPROXY, GOMODCACHE, GOCACHE included) with module mode forced, the
// local toolchain pinned and cgo off so binaries are reproducible.
func buildEnv(extra ...string) []string {
	env := append(os.Environ(),
		"GOFLAGS=-mod=mod -buildvcs=false",
		"GOTOOLCHAIN=local",
		"GOWORK=off",
		"GO111MODULE=on",
		"CGO_ENABLED=0",
	)
	return append(env, extra...)
}

var buildArgs = []string{"build", "-trimpath", "-o"}

// cacheKey hashes what determines a program's binary: its sources, the
// toolchain and the build flags.
func cacheKey(tc toolchain, name string, src map[string][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n%s\n", cacheFormat, tc.version, tc.goos, tc.goarch,
		strings.Join(buildArgs, " "), name)
	files := make([]string, 0, len(src))
	for f := range src {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		fmt.Fprintf(h, "%s %d\n", f, len(src[f]))
		h.Write(src[f])
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// Build builds every fixture program into cacheDir/programs and returns
// them sorted by name. A binary whose sources and toolchain are unchanged
// since an earlier call is reused as is. Each binary is written under a
// temporary name and renamed into place, so concurrent callers sharing
// cacheDir never see a partial file.
func Build(ctx context.Context, cacheDir string) ([]Program, error) {
	if cacheDir == "" {
		return nil, errors.New("vulnfixture: build: empty cache directory")
	}
	outDir := filepath.Join(cacheDir, "programs")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("vulnfixture: build: %w", err)
	}
	tc, err := currentToolchain(ctx)
	if err != nil {
		return nil, err
	}
	names, err := Names()
	if err != nil {
		return nil, err
	}
	progs := make([]Program, 0, len(names))
	for _, name := range names {
		p, err := buildOne(ctx, tc, cacheDir, outDir, name)
		if err != nil {
			return nil, err
		}
		progs = append(progs, p)
	}
	return progs, nil
}

func buildOne(ctx context.Context, tc toolchain, cacheDir, outDir, name string) (Program, error) {
	src, err := Source(name)
	if err != nil {
		return Program{}, err
	}
	exe := name + "-" + cacheKey(tc, name, src)
	if tc.goos == "windows" {
		exe += ".exe"
	}
	target := filepath.Join(outDir, exe)
	if mods, err := linkedModules(target); err == nil {
		return Program{Name: name, Modules: mods, Path: target}, nil
	}

	work, err := os.MkdirTemp(cacheDir, "src-"+name+"-")
	if err != nil {
		return Program{}, fmt.Errorf("vulnfixture: build %s: %w", name, err)
	}
	defer os.RemoveAll(work)
	for f, b := range src {
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			return Program{}, fmt.Errorf("vulnfixture: build %s: %w", name, err)
		}
	}
	tmp := filepath.Join(work, "out.bin")
	bctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	args := append(append([]string{}, buildArgs...), tmp, ".")
	if _, err := run(bctx, work, buildEnv(), tc.goCmd, args...); err != nil {
		return Program{}, fmt.Errorf("vulnfixture: build %s: %w", name, err)
	}
	mods, err := linkedModules(tmp)
	if err != nil {
		return Program{}, fmt.Errorf("vulnfixture: build %s: %w", name, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return Program{}, fmt.Errorf("vulnfixture: build %s: install binary: %w", name, err)
	}
	return Program{Name: name, Modules: mods, Path: target}, nil
}

// linkedModules reads the dependency modules recorded in a Go binary's
// build information.
func linkedModules(bin string) (map[string]string, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read build info of %s: %w", bin, err)
	}
	mods := make(map[string]string, len(info.Deps))
	for _, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		mods[d.Path] = m.Version
	}
	return mods, nil
}

// limitedBuffer keeps at most max bytes and records whether more arrived.
type limitedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room < len(p) {
		l.truncated = true
		if room > 0 {
			l.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return l.buf.Write(p)
}

// run runs a command and returns its standard output. A non-zero exit
// returns an error quoting the tail of its standard error.
func run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	stdout := &limitedBuffer{max: MaxCommandOutput}
	stderr := &limitedBuffer{max: MaxCommandOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if err == nil && stdout.truncated {
		err = fmt.Errorf("output exceeds %d bytes", MaxCommandOutput)
	}
	if err != nil {
		msg := stderr.buf.Bytes()
		if len(msg) > maxErrorOutput {
			msg = msg[len(msg)-maxErrorOutput:]
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err,
			strings.TrimSpace(string(msg)))
	}
	return stdout.buf.Bytes(), nil
}
