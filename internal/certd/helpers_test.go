package certd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/vulnfixture"
)

// osvData returns the directory of the real OSV snapshots, or skips
// loudly when it is missing (CI has it beside the repository).
func osvData(t testing.TB) string {
	t.Helper()
	dir, err := vulnfixture.FindOSVData()
	if err != nil {
		t.Skipf("SKIPPING: real OSV data not available: %v", err)
	}
	return dir
}

var (
	fixturesOnce sync.Once
	fixtures     map[string]vulnfixture.Program
	fixturesErr  error
)

// programs builds (or reuses) the real fixture binaries.
func programs(t testing.TB) map[string]vulnfixture.Program {
	t.Helper()
	fixturesOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		ps, err := vulnfixture.Build(ctx, vulnfixture.DefaultCacheDir())
		if err != nil {
			fixturesErr = err
			return
		}
		fixtures = map[string]vulnfixture.Program{}
		for _, p := range ps {
			fixtures[p.Name] = p
		}
	})
	if fixturesErr != nil {
		t.Fatalf("building fixture programs: %v", fixturesErr)
	}
	return fixtures
}

// copyFile copies src to dst through a rename, as a snapshot update lands.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	// Make sure the fingerprint changes even on coarse file-system clocks.
	later := time.Now().Add(time.Duration(len(b)%1000+1) * time.Millisecond)
	os.Chtimes(dst, later, later)
}

// newService opens a service over one source file in a temp dir.
func newService(t testing.TB, source string, mod func(*Config)) *Service {
	t.Helper()
	cfg := Config{DataDir: t.TempDir(), OSV: []string{source}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tarGz builds a gzip-compressed tar bundle of the given files.
func tarGz(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func submitFile(t testing.TB, s *Service, name, path string) *Outcome {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := s.Submit(context.Background(), name, f, nil)
	if err != nil {
		t.Fatalf("Submit %s: %v", name, err)
	}
	return out
}

func submitBytes(t testing.TB, s *Service, name string, data, sbom []byte) *Outcome {
	t.Helper()
	out, err := s.Submit(context.Background(), name, bytes.NewReader(data), sbom)
	if err != nil {
		t.Fatalf("Submit %s: %v", name, err)
	}
	return out
}

func findingIDs(out *Outcome) []string {
	seen := map[string]bool{}
	var ids []string
	for _, f := range out.Findings {
		if !seen[f.ID] {
			seen[f.ID] = true
			ids = append(ids, f.ID)
		}
	}
	return ids
}
