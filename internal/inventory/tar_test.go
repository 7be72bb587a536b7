package inventory

import (
	"archive/tar"
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

// bundleEntries is a small root file system: the Go test program, a dpkg
// database, a non-Go executable, scripts, text and links.
func bundleEntries(t testing.TB) []entry {
	return []entry{
		{name: "./", typ: tar.TypeDir},
		{name: "./usr/bin/", typ: tar.TypeDir},
		{name: "./usr/bin/app", body: readFile(t, testBinary(t, "", ""))},
		{name: "./usr/bin/app-link", typ: tar.TypeSymlink, linkname: "app"},
		{name: "./usr/bin/app-hard", typ: tar.TypeLink, linkname: "usr/bin/app"},
		{name: "./usr/bin/start.sh", body: []byte("#!/bin/sh\nexec /usr/bin/app \"$@\"\n")},
		{name: "./usr/lib/libfake.so", body: append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte{0x5a}, 4000)...)},
		{name: "./etc/motd", body: []byte("Welcome to the device.\n")},
		{name: "./var/lib/dpkg/status", body: readFile(t, "testdata/dpkg/status")},
		{name: "./var/lib/dpkg/status-old", body: []byte("Package: old\nVersion: 1\nStatus: install ok installed\n")},
		{name: "./var/lib/dpkg/status.d/tzdata", body: []byte("Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n")},
		{name: "./var/lib/dpkg/status.d/tzdata.md5sums", body: []byte("d41d8cd98f00b204e9800998ecf8427e  usr/share/zoneinfo/UTC\n")},
	}
}

func wantBundleComponents(t testing.TB) []vulnref.Component {
	want := append(wantBinaryComponents(t, "usr/bin/app"), wantDpkgComponents("dpkg:var/lib/dpkg/status")...)
	want = append(want, vulnref.Component{Ecosystem: "Debian", Name: "tzdata", Version: "2024a-0+deb12u1",
		PURL: "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all", Location: "dpkg:var/lib/dpkg/status.d/tzdata"})
	return sortComponents(want)
}

func TestTarBundle(t *testing.T) {
	for _, gz := range []bool{true, false} {
		name := "plain"
		if gz {
			name = "gzip"
		}
		t.Run(name, func(t *testing.T) {
			// The name says nothing of the format: detection is by magic.
			path := filepath.Join(t.TempDir(), "artifact.bin")
			if err := os.WriteFile(path, makeTar(t, gz, bundleEntries(t)...), 0o644); err != nil {
				t.Fatal(err)
			}
			inv, err := FromFile(path, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if inv.Kind != KindTar {
				t.Errorf("Kind = %q", inv.Kind)
			}
			if want := wantBundleComponents(t); !reflect.DeepEqual(inv.Components, want) {
				t.Errorf("components:\n got %+v\nwant %+v", inv.Components, want)
			}
			for _, n := range [][]string{
				{"1 executables without Go build info", "usr/lib/libfake.so"},
				{"2 symlinks and hard links not followed"},
				{"usr/bin/app: module", "replaced by local directory"},
			} {
				if !hasNote(inv.Notes, n...) {
					t.Errorf("no note with %q in %q", n, inv.Notes)
				}
			}
			if hasNote(inv.Notes, "malformed") {
				t.Errorf("unexpected malformed note in %q", inv.Notes)
			}
		})
	}
}

func TestTarLimitsAndHostileInput(t *testing.T) {
	bin := readFile(t, testBinary(t, "", ""))
	many := make([]entry, 51)
	for i := range many {
		many[i] = entry{name: "f" + strings.Repeat("x", i)}
	}
	zeros := make([]byte, 64<<20)
	for _, tc := range []struct {
		name  string
		data  []byte
		lim   Limits
		want  error
		limit string // LimitError.Limit, for ErrLimit
	}{
		{"huge declared size", makeTar(t, false, entry{name: "big", size: 1 << 40}), Limits{}, ErrLimit, "MaxTotalBytes"},
		{"huge declared size gzip", makeTar(t, true, entry{name: "big", size: 1 << 40}), Limits{}, ErrLimit, "MaxTotalBytes"},
		{"declared sizes over total", makeTar(t, false, entry{name: "a", body: make([]byte, 600<<10)}, entry{name: "b", body: make([]byte, 600<<10)}), Limits{MaxTotalBytes: 1 << 20}, ErrLimit, "MaxTotalBytes"},
		{"executable over MaxEntryBytes", makeTar(t, true, entry{name: "usr/bin/app", body: bin}), Limits{MaxEntryBytes: 1 << 20}, ErrLimit, "MaxEntryBytes"},
		{"dpkg status over MaxEntryBytes", makeTar(t, false, entry{name: "var/lib/dpkg/status", body: make([]byte, 2048)}), Limits{MaxEntryBytes: 1024}, ErrLimit, "MaxEntryBytes"},
		{"many entries", makeTar(t, false, many...), Limits{MaxEntries: 50}, ErrLimit, "MaxEntries"},
		{"gzip ratio bomb", makeTar(t, true, entry{name: "zeros", body: zeros}), Limits{}, ErrLimit, "MaxCompressionRatio"},
		{"decompressed stream over total", makeTar(t, true, entry{name: "zeros", body: zeros[:4<<20]}), Limits{MaxTotalBytes: 4 << 20}, ErrLimit, "MaxTotalBytes"},
		{"too many components", makeTar(t, false, entry{name: "app", body: bin}), Limits{MaxComponents: 3}, ErrLimit, "MaxComponents"},
		{"truncated tar in an executable", makeTar(t, false, entry{name: "app", body: bin})[:len(bin)/2], Limits{}, ErrMalformed, ""},
		{"truncated tar in a skipped file", makeTar(t, false, entry{name: "text", body: bytes.Repeat([]byte("a"), 10000)})[:5000], Limits{}, ErrMalformed, ""},
		{"truncated tar.gz", truncate(makeTar(t, true, entry{name: "app", body: bin}), 0.5), Limits{}, ErrMalformed, ""},
		{"gzip checksum", corruptCRC(makeTar(t, true, entry{name: "etc/motd", body: []byte("hello\n")})), Limits{}, ErrMalformed, ""},
		{"gzip of something else", gzipBytes(t, []byte("this is not a tar archive")), Limits{}, ErrUnrecognized, ""},
		{"random bytes", randomBytes(4096), Limits{}, ErrUnrecognized, ""},
		{"empty", nil, Limits{}, ErrUnrecognized, ""},
		{"xz", append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, randomBytes(100)...), Limits{}, ErrUnrecognized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := inventoryOf(tc.data, tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v (inventory %+v)", err, tc.want, inv)
			}
			if inv != nil {
				t.Errorf("inventory returned with an error: %+v", inv)
			}
			var le *LimitError
			if tc.limit != "" && (!errors.As(err, &le) || le.Limit != tc.limit) {
				t.Errorf("err = %v, want the %s limit", err, tc.limit)
			}
		})
	}
}

// TestTarSkippedEntries covers entries that are skipped with a note:
// names the bundle installer refuses, links, and a large non-executable
// file that is never read into memory.
func TestTarSkippedEntries(t *testing.T) {
	bin := readFile(t, testBinary(t, "", ""))
	data := makeTar(t, true,
		entry{name: "../../usr/bin/evil", body: bin},
		entry{name: "/usr/bin/abs", body: bin},
		entry{name: "usr/bin/../../escape", body: bin},
		entry{name: `usr\bin\win`, body: bin},
		entry{name: "usr/bin/tool", typ: tar.TypeSymlink, linkname: "/usr/bin/evil"},
		entry{name: "usr/bin/tool2", typ: tar.TypeSymlink, linkname: "../../../../etc/passwd"},
		entry{name: "dev/null", typ: tar.TypeChar},
		entry{name: "data/blob", body: bytes.Repeat([]byte("not an executable "), 200_000)},
	)
	inv, err := inventoryOf(data, Limits{MaxEntryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Components) != 0 {
		t.Errorf("components from skipped entries: %+v", inv.Components)
	}
	for _, n := range [][]string{
		{`"../../usr/bin/evil" skipped: '..' component`},
		{`"/usr/bin/abs" skipped: absolute path`},
		{`"usr/bin/../../escape" skipped: '..' component`},
		{`skipped: name contains a backslash`},
		{"2 symlinks and hard links not followed"},
		{"1 device, FIFO or other special entries ignored"},
		{"no Go binary or dpkg status database found"},
	} {
		if !hasNote(inv.Notes, n...) {
			t.Errorf("no note with %q in %q", n, inv.Notes)
		}
	}
}

func TestTarNotesBounded(t *testing.T) {
	var es []entry
	for i := range 300 {
		es = append(es, entry{name: "../x" + strings.Repeat("y", i), body: []byte("z")})
	}
	inv, err := inventoryOf(makeTar(t, false, es...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Notes) != maxNotes+1 || !strings.Contains(inv.Notes[maxNotes], "further notes omitted") {
		t.Errorf("%d notes, last %q", len(inv.Notes), inv.Notes[len(inv.Notes)-1])
	}
}

func TestCleanEntryName(t *testing.T) {
	for _, tc := range []struct{ in, want, problem string }{
		{"./usr/bin/app", "usr/bin/app", ""},
		{"usr//bin/./app", "usr/bin/app", ""},
		{"usr/bin/", "usr/bin", ""},
		{"../x", "", "'..' component"},
		{"a/../b", "", "'..' component"},
		{"/etc/passwd", "", "absolute path"},
		{"a\x00b", "", "name contains NUL"},
		{"\xff", "", "name is not valid UTF-8"},
		{"./", "", "empty name"},
	} {
		got, problem := cleanEntryName(tc.in)
		if got != tc.want || problem != tc.problem {
			t.Errorf("cleanEntryName(%q) = %q, %q; want %q, %q", tc.in, got, problem, tc.want, tc.problem)
		}
	}
}

func TestIsTarHeaderRejectsOtherData(t *testing.T) {
	if isTarHeader(make([]byte, blockSize)) {
		t.Error("a zero block is taken for a tar header")
	}
	if isTarHeader(randomBytes(blockSize)) {
		t.Error("random bytes are taken for a tar header")
	}
	if !isTarHeader(makeTar(t, false, entry{name: "MZ-looks-like-pe", body: []byte("x")})) {
		t.Error("a real tar header is rejected")
	}
	inv, err := inventoryOf(makeTar(t, false, entry{name: "MZ-looks-like-pe", body: []byte("x")}), Limits{})
	if err != nil || inv.Kind != KindTar {
		t.Errorf("tar whose first name starts with MZ: %v, %+v", err, inv)
	}
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func truncate(b []byte, frac float64) []byte { return slices.Clone(b[:int(float64(len(b))*frac)]) }

// corruptCRC flips a bit of the gzip trailer's CRC-32.
func corruptCRC(b []byte) []byte {
	b = slices.Clone(b)
	b[len(b)-8] ^= 1
	return b
}

func TestTarNonGoExecutablesAggregated(t *testing.T) {
	var es []entry
	for i := range 8 {
		es = append(es, entry{name: "usr/lib/lib" + string(rune('a'+i)) + ".so", body: append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 64)...)})
	}
	inv, err := inventoryOf(makeTar(t, true, es...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := "8 executables without Go build info not inventoried: usr/lib/liba.so, usr/lib/libb.so, usr/lib/libc.so, usr/lib/libd.so, usr/lib/libe.so and 3 more"
	if !slices.Contains(inv.Notes, want) {
		t.Errorf("notes %q lack %q", inv.Notes, want)
	}
}
