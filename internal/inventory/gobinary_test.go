package inventory

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func TestStdlibVersion(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"go1.22.3", "1.22.3", true},
		{"go1.22", "1.22.0", true},
		{"go1.21.0", "1.21.0", true},
		{"go1.21rc2", "1.21.0-rc.2", true},
		{"go1.18beta1", "1.18.0-beta.1", true},
		{"go1.22.3 X:boringcrypto", "1.22.3", true},
		{"go1.22.3 X:nocoverageredesign,loopvar", "1.22.3", true},
		{"go1.22.3-vendor-fips", "1.22.3", true},
		{"go1", "1.0.0", true},
		{"go1.9.7", "1.9.7", true},
		{"go1.26.8", "1.26.8", true},
		{"devel go1.23-abcdef0 Tue Jan 2 15:04:05 2024 +0000", "", false},
		{"1.22.3", "", false},
		{"go1.x", "", false},
		{"", "", false},
		{"   ", "", false},
		{"go1.22.3.4", "", false},
	} {
		got, ok := StdlibVersion(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("StdlibVersion(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalizeStdlibVersion(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"go1.22.3", "1.22.3", true},
		{"v1.22.3", "1.22.3", true},
		{"1.22.3", "1.22.3", true},
		{"1.22", "1.22.0", true},
		{"1.21.0-rc.2", "1.21.0-rc.2", true},
		{"go1.21rc2", "1.21.0-rc.2", true},
		{"latest", "", false},
		{"", "", false},
	} {
		got, ok := normalizeStdlibVersion(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normalizeStdlibVersion(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got := toolchainGoVersion("v0.0.1-go1.22.3.linux-amd64"); got != "go1.22.3" {
		t.Errorf("toolchainGoVersion = %q", got)
	}
}

// TestGoBinary inventories a real Go program built for the host, and the
// same program built as PE and Mach-O, and checks the exact components.
func TestGoBinary(t *testing.T) {
	for _, target := range [][2]string{{"", ""}, {"windows", "amd64"}, {"darwin", "arm64"}} {
		name := target[0] + "/" + target[1]
		if target[0] == "" {
			name = "host"
		}
		t.Run(name, func(t *testing.T) {
			if target[0] != "" && testing.Short() {
				t.Skip("cross-compiling the test program is slow on a cold build cache; skipped in -short mode")
			}
			bin := testBinary(t, target[0], target[1])
			inv, err := FromFile(bin, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if inv.Kind != KindGoBinary {
				t.Errorf("Kind = %q, want %q", inv.Kind, KindGoBinary)
			}
			want := wantBinaryComponents(t, LocationArtifact)
			if target[0] != "" {
				for i := range want {
					want[i].GOOS, want[i].GOARCH = target[0], target[1]
				}
			}
			if !reflect.DeepEqual(inv.Components, want) {
				t.Errorf("components:\n got %+v\nwant %+v", inv.Components, want)
			}
			if !hasNote(inv.Notes, `"example.com/localdep" is replaced by local directory "./localdep"`, `"v1.2.3"`) {
				t.Errorf("no note about the local replacement in %q", inv.Notes)
			}
			if !hasNote(inv.Notes, `main module "example.com/app"`, "(devel)") {
				t.Errorf("no note about the devel main module in %q", inv.Notes)
			}
		})
	}
}

// TestGoBinaryMainModuleVersion builds a program from a tagged Git
// repository, so its main module carries a release version, which is
// listed.
func TestGoBinaryMainModuleVersion(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIPPING: git not found; it is needed to stamp a main module version")
	}
	inv, err := FromFile(buildProgram(t, taggedModule, "v1.4.0", "", ""), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	std := wantStdlib(t)
	want := []vulnref.Component{
		{Ecosystem: "Go", Name: "example.com/tagged", Version: "1.4.0", PURL: "pkg:golang/example.com/tagged@v1.4.0", Location: ".", GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
		{Ecosystem: "Go", Name: "stdlib", Version: std, PURL: "pkg:golang/stdlib@v" + std, Location: ".", GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
	}
	if !reflect.DeepEqual(inv.Components, want) {
		t.Errorf("components:\n got %+v\nwant %+v", inv.Components, want)
	}
	if len(inv.Notes) != 0 {
		t.Errorf("notes: %q", inv.Notes)
	}
}

// TestGoBinaryDetectedByMagic shows the name plays no part: the binary is
// found under a misleading name, and a text file named like a binary is
// not one.
func TestGoBinaryDetectedByMagic(t *testing.T) {
	dir := t.TempDir()
	misnamed := filepath.Join(dir, "readme.txt")
	if err := os.WriteFile(misnamed, readFile(t, testBinary(t, "", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := FromFile(misnamed, Limits{})
	if err != nil || inv.Kind != KindGoBinary || len(inv.Components) != 4 {
		t.Fatalf("misnamed binary: %v, %+v", err, inv)
	}
	fake := filepath.Join(dir, "app.exe")
	if err := os.WriteFile(fake, []byte("just some text that is not an executable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromFile(fake, Limits{}); !errors.Is(err, ErrUnrecognized) {
		t.Fatalf("text named app.exe: err = %v, want ErrUnrecognized", err)
	}
}

func TestNotGoExecutable(t *testing.T) {
	for name, b := range map[string][]byte{
		"elf junk":      append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte{0xAA}, 200)...),
		"pe junk":       append([]byte("MZ"), bytes.Repeat([]byte{0}, 300)...),
		"macho junk":    append([]byte{0xcf, 0xfa, 0xed, 0xfe}, bytes.Repeat([]byte{1}, 64)...),
		"truncated elf": readFile(t, testBinary(t, "", ""))[:4096],
	} {
		_, err := inventoryOf(b, Limits{})
		if !errors.Is(err, ErrUnrecognized) {
			t.Errorf("%s: err = %v, want ErrUnrecognized", name, err)
		}
	}
}

func TestFromFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := FromFile(dir, Limits{}); err == nil {
		t.Error("FromFile on a directory succeeded")
	}
	if _, err := FromFile(filepath.Join(dir, "missing"), Limits{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FromFile on a missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromFile(big, Limits{MaxArtifactBytes: 1024}); !errors.Is(err, ErrLimit) {
		t.Errorf("oversized artifact: err = %v, want ErrLimit", err)
	}
	if _, err := FromFile(big, Limits{MaxEntries: -1}); err == nil {
		t.Error("negative limit accepted")
	}
	if _, err := FromReader(bytes.NewReader(nil), -1, Limits{}); err == nil {
		t.Error("negative size accepted")
	}
	if _, err := FromReader(bytes.NewReader([]byte("abc")), 10, Limits{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("size beyond the reader: err = %v, want ErrMalformed", err)
	}
}
