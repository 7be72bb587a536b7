package vulnfixture

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Pinned govulncheck.
const (
	GovulncheckModule  = "golang.org/x/vuln"
	GovulncheckPackage = GovulncheckModule + "/cmd/govulncheck"
	GovulncheckVersion = "v1.9.0"
)

// MaxScanFindings bounds the findings read from one govulncheck run.
const MaxScanFindings = 100000

// Govulncheck installs govulncheck (GovulncheckVersion) into cacheDir/bin
// with `go install` and returns its path. An installed binary whose build
// information names the pinned version is reused. The binary is installed
// into a private directory first and renamed into place, so concurrent
// callers sharing cacheDir do not collide.
func Govulncheck(ctx context.Context, cacheDir string) (string, error) {
	if cacheDir == "" {
		return "", errors.New("vulnfixture: govulncheck: empty cache directory")
	}
	exe := "govulncheck"
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	binDir := filepath.Join(cacheDir, "bin")
	target := filepath.Join(binDir, exe)
	if isPinnedGovulncheck(target) {
		return target, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("vulnfixture: govulncheck: %w", err)
	}
	goCmd, err := goCommand()
	if err != nil {
		return "", err
	}
	tmpBin, err := os.MkdirTemp(cacheDir, "gobin-")
	if err != nil {
		return "", fmt.Errorf("vulnfixture: govulncheck: %w", err)
	}
	defer os.RemoveAll(tmpBin)
	ictx, cancel := context.WithTimeout(ctx, InstallTimeout)
	defer cancel()
	env := append(os.Environ(), "GOBIN="+tmpBin, "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local",
		"GOWORK=off", "GO111MODULE=on", "CGO_ENABLED=0")
	if _, err := run(ictx, tmpBin, env, goCmd, "install", GovulncheckPackage+"@"+GovulncheckVersion); err != nil {
		return "", fmt.Errorf("vulnfixture: install govulncheck: %w", err)
	}
	built := filepath.Join(tmpBin, exe)
	if !isPinnedGovulncheck(built) {
		return "", fmt.Errorf("vulnfixture: install govulncheck: %s is not %s@%s", built, GovulncheckModule, GovulncheckVersion)
	}
	if err := os.Rename(built, target); err != nil {
		return "", fmt.Errorf("vulnfixture: install govulncheck: %w", err)
	}
	return target, nil
}

func isPinnedGovulncheck(path string) bool {
	info, err := buildinfo.ReadFile(path)
	return err == nil && info.Main.Path == GovulncheckModule && info.Main.Version == GovulncheckVersion
}

// Scan levels of govulncheck's -scan flag that ScanLevelIDs accepts.
const (
	ScanModule = "module"
	ScanSymbol = "symbol"
)

// ScanIDs runs
//
//	govulncheck -db file://<dbDir> -mode binary -scan module -format json <binary>
//
// and returns the sorted, unique advisory ids of the findings it reports
// (the osv messages, which name every advisory of the modules in use
// whatever their versions, are not findings and are not counted).
func ScanIDs(ctx context.Context, govulncheck, dbDir, binary string) ([]string, error) {
	return ScanLevelIDs(ctx, govulncheck, dbDir, binary, ScanModule)
}

// ScanLevelIDs runs govulncheck in binary mode at the given scan level
// (ScanModule or ScanSymbol, govulncheck's default) and returns the sorted,
// unique advisory ids of the findings at that level: every finding for
// ScanModule; for ScanSymbol, only findings whose innermost frame names a
// function (the vulnerable symbols govulncheck found in the binary).
func ScanLevelIDs(ctx context.Context, govulncheck, dbDir, binary, level string) ([]string, error) {
	if level != ScanModule && level != ScanSymbol {
		return nil, fmt.Errorf("vulnfixture: scan: unknown level %q", level)
	}
	absDB, err := filepath.Abs(dbDir)
	if err != nil {
		return nil, fmt.Errorf("vulnfixture: scan: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(absDB, "index", "modules.json")); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vulnfixture: scan: %s is not a vulnerability database (no index/modules.json)", dbDir)
	}
	if fi, err := os.Stat(binary); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vulnfixture: scan: binary %s: not a regular file", binary)
	}
	dbPath := filepath.ToSlash(absDB)
	if !strings.HasPrefix(dbPath, "/") {
		dbPath = "/" + dbPath // a Windows drive path
	}
	dbURL := (&url.URL{Scheme: "file", Path: dbPath}).String()
	sctx, cancel := context.WithTimeout(ctx, ScanTimeout)
	defer cancel()
	out, err := run(sctx, "", nil, govulncheck,
		"-db", dbURL, "-mode", "binary", "-scan", level, "-format", "json", binary)
	if err != nil {
		return nil, fmt.Errorf("vulnfixture: scan %s: %w", binary, err)
	}
	ids, err := findingIDs(out, level == ScanSymbol)
	if err != nil {
		return nil, fmt.Errorf("vulnfixture: scan %s: %w", binary, err)
	}
	return ids, nil
}

// findingIDs reads govulncheck's JSON message stream and returns the
// sorted unique ids of its findings (with symbolsOnly, of those whose
// first trace frame names a function).
func findingIDs(stream []byte, symbolsOnly bool) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(stream))
	seen := map[string]bool{}
	n := 0
	for {
		var msg struct {
			Finding *struct {
				OSV   string `json:"osv"`
				Trace []struct {
					Function string `json:"function"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode govulncheck output: %w", err)
		}
		if msg.Finding == nil {
			continue
		}
		if msg.Finding.OSV == "" {
			return nil, errors.New("decode govulncheck output: finding without an osv id")
		}
		if n++; n > MaxScanFindings {
			return nil, fmt.Errorf("decode govulncheck output: more than %d findings", MaxScanFindings)
		}
		if symbolsOnly && (len(msg.Finding.Trace) == 0 || msg.Finding.Trace[0].Function == "") {
			continue
		}
		seen[msg.Finding.OSV] = true
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}
