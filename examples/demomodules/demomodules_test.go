package demomodules

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// TestBuildLinksWhatEachSpecSays builds the four programs (or finds them
// in the cache) and checks what each links and bundles: only app 1.0.0
// and app 1.1.0 link golang.org/x/text, at the versions their specs pin;
// a second build is served from the cache.
func TestBuildLinksWhatEachSpecSays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := DefaultCacheDir()
	built, err := Build(ctx, dir, All()...)
	if errors.Is(err, ErrProxy) {
		t.Skipf("SKIPPING: golang.org/x/text is not in the module cache and the Go module proxy is unreachable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range built {
		info, err := buildinfo.ReadFile(b.Binary)
		if err != nil {
			t.Fatal(err)
		}
		text := ""
		for _, d := range info.Deps {
			if d.Path == "golang.org/x/text" {
				text = d.Version
			}
		}
		if text != b.Text {
			t.Errorf("%s %s links golang.org/x/text %q, want %q", b.Module, b.Version, text, b.Text)
		}
		f, err := os.ReadFile(b.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string][]byte{}
		tr := tar.NewReader(bytes.NewReader(f))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			names[h.Name] = data
		}
		if string(names["VERSION"]) != b.Version+"\n" || len(names["bin/"+b.Module]) == 0 {
			t.Errorf("%s %s: bundle holds %d files, VERSION %q", b.Module, b.Version, len(names), names["VERSION"])
		}
	}
	again, err := Build(ctx, dir, All()...)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range again {
		if !b.Cached || b.Bundle != built[i].Bundle {
			t.Errorf("%s %s rebuilt (cached %t)", b.Module, b.Version, b.Cached)
		}
	}
}
