package osvdb

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func TestRejectedRecords(t *testing.T) {
	good := rec("GOOD-1", "", aff("Go", "example.com/mod", nil, "SEMVER:"+ev("i:0", "f:1.0.0")))
	tests := []struct {
		name   string
		record string
		reason error
	}{
		{"bad JSON", `{"id":"BAD-1",`, ErrBadJSON},
		{"not an object", `[1,2,3]`, ErrBadJSON},
		{"wrong field type", `{"id":"BAD-2","aliases":"CVE-1"}`, ErrBadJSON},
		{"missing id", rec("", "", aff("Go", "x.example/y", nil, "SEMVER:"+ev("i:0"))), ErrBadID},
		{"malformed id", rec("BAD ID/../x", ""), ErrBadID},
		{"unknown range type", rec("BAD-3", "", aff("Go", "x.example/y", nil, "FOO:"+ev("i:0"))), ErrRangeType},
		{"missing range type", rec("BAD-4", "", `{"package":{"ecosystem":"Go","name":"x.example/y"},"ranges":[{"events":[{"introduced":"0"}]}]}`), ErrRangeType},
		{"unparsable semver", rec("BAD-5", "", aff("Go", "x.example/y", nil, "SEMVER:"+ev("i:0", "f:not.a.version"))), ErrBadVersion},
		{"leading v in SEMVER", rec("BAD-6", "", aff("Go", "x.example/y", nil, "SEMVER:"+ev("i:v1.0.0"))), ErrBadVersion},
		{"unparsable Debian version", rec("BAD-7", "", aff("Debian:12", "zlib", nil, "ECOSYSTEM:"+ev("i:0", "f:x:1.2"))), ErrBadVersion},
		{"unsupported ecosystem", rec("BAD-8", "", aff("Nonesuch", "p", nil, "ECOSYSTEM:"+ev("i:0", "f:1"))), ErrUnsupportedEcosystem},
		{"event with two kinds", rec("BAD-9", "", `{"package":{"ecosystem":"Go","name":"x.example/y"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1.0.0"}]}]}`), ErrBadEvent},
		{"empty event", rec("BAD-10", "", `{"package":{"ecosystem":"Go","name":"x.example/y"},"ranges":[{"type":"SEMVER","events":[{}]}]}`), ErrBadEvent},
		{"range without introduced", rec("BAD-11", "", aff("Go", "x.example/y", nil, "SEMVER:"+ev("f:1.0.0"))), ErrBadEvent},
		{"package without name", rec("BAD-12", "", aff("Go", "", nil, "SEMVER:"+ev("i:0"))), ErrBadPackage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := makeZip(t, false, zipEntry{"GOOD-1.json", []byte(good)}, zipEntry{"bad.json", []byte(tc.record)})
			db, err := loadZipBytes(z, Limits{})
			if err != nil {
				t.Fatalf("load failed instead of rejecting one record: %v", err)
			}
			if db.Len() != 1 {
				t.Errorf("Len = %d, want 1", db.Len())
			}
			rej := db.Rejected()
			if len(rej) != 1 {
				t.Fatalf("Rejected = %v, want one", rej)
			}
			if rej[0].File != "bad.json" || !errors.Is(rej[0], tc.reason) {
				t.Errorf("rejection %v: want file bad.json and reason %v", rej[0], tc.reason)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	good := []byte(rec("GOOD-1", "", aff("Go", "example.com/mod", nil, "SEMVER:"+ev("i:0"))))
	big := bytes.Repeat([]byte(" "), 70<<10) // a record just over 64 KiB
	tests := []struct {
		name string
		zip  []byte
		lim  Limits
		want error
	}{
		{"not a zip", []byte("this is not a zip archive at all"), Limits{}, ErrNotZip},
		{"empty input", nil, Limits{}, ErrNotZip},
		{"no records", makeZip(t, false), Limits{}, ErrEmpty},
		{"only rejected records", makeZip(t, false, zipEntry{"a.json", []byte("{")}), Limits{}, ErrEmpty},
		{"duplicate id", makeZip(t, false, zipEntry{"a.json", good}, zipEntry{"b.json", append(bytes.Clone(good), ' ')}), Limits{}, ErrDuplicateID},
		{"oversized record", makeZip(t, false, zipEntry{"a.json", append(bytes.Clone(good), big...)}), Limits{}, ErrTooLarge},
		{"too many entries", makeZip(t, false, zipEntry{"a.json", good}, zipEntry{"b.txt", nil}, zipEntry{"c.txt", nil}), Limits{MaxRecords: 2}, ErrTooMany},
		{"total too large", makeZip(t, false, zipEntry{"a.json", good}, zipEntry{"b.json", good}), Limits{MaxTotalBytes: int64(len(good)) + 10}, ErrTooLarge},
		{"archive too large", makeZip(t, false, zipEntry{"a.json", good}), Limits{MaxArchiveBytes: 10}, ErrTooLarge},
		{"parent path", makeZip(t, false, zipEntry{"../evil.json", good}), Limits{}, ErrUnsafePath},
		{"absolute path", makeZip(t, false, zipEntry{"/etc/evil.json", good}), Limits{}, ErrUnsafePath},
		{"backslash path", makeZip(t, false, zipEntry{`a\..\..\evil.json`, good}), Limits{}, ErrUnsafePath},
		{"drive letter", makeZip(t, false, zipEntry{"C:evil.json", good}), Limits{}, ErrUnsafePath},
		{"inner parent path", makeZip(t, false, zipEntry{"a/../../evil.json", good}), Limits{}, ErrUnsafePath},
		{"control character", makeZip(t, false, zipEntry{"a\x00.json", good}), Limits{}, ErrUnsafePath},
		{"drive letter with slash", makeZip(t, false, zipEntry{"c:/evil.json", good}), Limits{}, ErrUnsafePath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := loadZipBytes(tc.zip, tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if db != nil {
				t.Error("a DB came back with the error")
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "osvdb: ") {
				t.Errorf("error lacks context: %v", err)
			}
		})
	}
	if _, err := loadZipBytes(makeZip(t, false, zipEntry{"a.json", good}), Limits{MaxRecords: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

// bomb builds a zip whose single entry declares declared bytes but
// inflates to actual bytes.
func bomb(t *testing.T, declared uint64, actual int) []byte {
	t.Helper()
	data := bytes.Repeat([]byte("A"), actual)
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name:               "bomb.json",
		Method:             zip.Deflate,
		CRC32:              crc32.ChecksumIEEE(data),
		CompressedSize64:   uint64(comp.Len()),
		UncompressedSize64: declared,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
}

func TestZipBomb(t *testing.T) {
	// Declared size over the limit: refused before inflating.
	_, err := loadZipBytes(bomb(t, 1<<30, 1<<20), Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("declared bomb: err = %v, want ErrTooLarge", err)
	}
	// Declared small, inflates to 16 MiB: stopped by the reader.
	_, err = loadZipBytes(bomb(t, 100, 16<<20), Limits{})
	t.Log(err)
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
		t.Errorf("lying bomb: err = %v, want ErrCorrupt or ErrTooLarge", err)
	}
	// Many small entries whose declared total is too large.
	var es []zipEntry
	for i := 0; i < 50; i++ {
		es = append(es, zipEntry{strings.Repeat("x", i+1) + ".json", bytes.Repeat([]byte(" "), 60<<10)})
	}
	if _, err := loadZipBytes(makeZip(t, false, es...), Limits{MaxTotalBytes: 1 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("total bomb: err = %v, want ErrTooLarge", err)
	}
}

func TestLoadFileAndDirectory(t *testing.T) {
	dir := t.TempDir()
	good := rec("GOOD-1", "", aff("Go", "example.com/mod", nil, "SEMVER:"+ev("i:0")))
	files := map[string]string{
		"GOOD-1.json":         good,
		"sub/GOOD-2.json":     rec("GOOD-2", "", aff("Go", "example.com/two", nil, "SEMVER:"+ev("i:0"))),
		".git/IGNORED-1.json": rec("IGNORED-1", ""),
		"README.md":           "not a record",
		"broken.json":         "{",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "GOOD-1.json"), filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	db, err := Load(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if db.Len() != 2 {
		t.Errorf("Len = %d, want 2 (hidden dir and README skipped)", db.Len())
	}
	if r, ok := db.Record("GOOD-2"); !ok || r.File != "sub/GOOD-2.json" {
		t.Errorf("GOOD-2: %v %+v", ok, r)
	}
	rej := db.Rejected()
	if len(rej) != 2 {
		t.Fatalf("Rejected = %v, want broken.json and link.json", rej)
	}
	for _, r := range rej {
		switch r.File {
		case "broken.json":
			if !errors.Is(r, ErrBadJSON) {
				t.Errorf("broken.json: %v", r)
			}
		case "link.json":
			if !errors.Is(r, ErrNotRegular) {
				t.Errorf("link.json: %v", r)
			}
		default:
			t.Errorf("unexpected rejection %v", r)
		}
	}

	// Oversized file and too many files in a directory.
	os.WriteFile(filepath.Join(dir, "huge.json"), bytes.Repeat([]byte(" "), 100), 0o644)
	if _, err := Load(dir, Limits{MaxRecordBytes: 99}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized file: err = %v", err)
	}
	if _, err := Load(dir, Limits{MaxRecords: 2}); !errors.Is(err, ErrTooMany) {
		t.Errorf("too many files: err = %v", err)
	}

	// A file that is not a zip, and a missing path.
	notZip := filepath.Join(dir, "README.md")
	if _, err := Load(notZip, Limits{}); !errors.Is(err, ErrNotZip) {
		t.Errorf("Load(non-zip) err = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.zip"), Limits{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) err = %v", err)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestReadIsBounded checks the per-record and total limits on the bytes
// actually read, whatever a header declared.
func TestReadIsBounded(t *testing.T) {
	lim, err := Limits{MaxRecordBytes: 10, MaxTotalBytes: 15}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if lim.MaxRecords != DefaultMaxRecords || lim.MaxArchiveBytes != DefaultMaxArchiveBytes {
		t.Errorf("zero fields not defaulted: %+v", lim)
	}
	b := newBuilder("t", lim)
	cr := &countingReader{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	if _, err := b.read("endless", cr); !errors.Is(err, ErrTooLarge) {
		t.Errorf("endless record: err = %v", err)
	}
	if cr.n > 11 {
		t.Errorf("read %d bytes of an oversized record, want at most 11", cr.n)
	}
	b = newBuilder("t", lim)
	if _, err := b.read("a", strings.NewReader("12345678")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.read("b", strings.NewReader("12345678")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("total over limit: err = %v", err)
	}
}

// TestColonInNames loads a record whose id, and so its file name, holds a
// colon, in an ecosystem ordered like RPM.
func TestColonInNames(t *testing.T) {
	r := rec("ALSA-2022:0001", "", aff("AlmaLinux:8", "openssl", nil, "ECOSYSTEM:"+ev("i:0", "f:1:1.1.1k-6.el8_5")))
	db, err := loadZipBytes(makeZip(t, false, zipEntry{"ALSA-2022:0001.json", []byte(r)}), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c := vulnref.Component{Ecosystem: "AlmaLinux", Name: "openssl", Version: "1:1.1.1k-5.el8_5"}
	if fs := db.Match(c); len(fs) != 1 || fs[0].ID != "ALSA-2022:0001" || fs[0].Fixed != "1:1.1.1k-6.el8_5" {
		t.Errorf("Match = %+v", fs)
	}
	c.Version = "1:1.1.1k-6.el8_5"
	if fs := db.Match(c); len(fs) != 0 {
		t.Errorf("fixed version matched: %+v", fs)
	}
}
