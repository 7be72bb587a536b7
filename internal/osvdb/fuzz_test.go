package osvdb

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

// recordReasons are the errors a rejected record may wrap.
var recordReasons = []error{ErrBadJSON, ErrBadID, ErrBadPackage, ErrRangeType, ErrBadEvent, ErrBadVersion, ErrUnsupportedEcosystem}

// maxFuzzProbes bounds the versions probed per affected entry.
const maxFuzzProbes = 32

func FuzzLoadRecord(f *testing.F) {
	f.Add([]byte(rec("F-1", "", aff("Go", "example.com/m", []string{"1.0.0"}, "SEMVER:"+ev("i:0", "f:1.2.0", "i:2.0.0", "l:2.1.0", "x:3.0.0")))))
	f.Add([]byte(rec("F-2", `"withdrawn":"2025-01-01T00:00:00Z"`, aff("Debian:12", "zlib", nil, "ECOSYSTEM:"+ev("i:0", "f:1:1.2.13-1")))))
	f.Add([]byte(rec("F-3", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]`, aff("PyPI", "pkg", nil, "ECOSYSTEM:"+ev("i:1.0a1", "f:1.0")))))
	f.Add([]byte(`{"id":"F-4","affected":[{"package":{"ecosystem":"Go","name":"x"},"ranges":[{"type":"GIT","events":[{"introduced":"abc"}]}]}]}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`{`))
	// A few real records when the data is present.
	if dir := findData(); dir != "" {
		if zr, err := zip.OpenReader(filepath.Join(dir, snap2026)); err == nil {
			for _, e := range zr.File {
				if strings.HasSuffix(e.Name, "0015.json") || strings.HasSuffix(e.Name, "6218.json") || strings.HasSuffix(e.Name, "1571.json") {
					rc, _ := e.Open()
					b, _ := io.ReadAll(io.LimitReader(rc, DefaultMaxRecordBytes))
					rc.Close()
					f.Add(b)
				}
			}
			zr.Close()
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > DefaultMaxRecordBytes {
			return // the loaders refuse these before parsing
		}
		r, err := parseRecord(raw)
		if err != nil {
			for _, reason := range recordReasons {
				if errors.Is(err, reason) {
					return
				}
			}
			t.Fatalf("rejection without a known reason: %v", err)
		}
		sum := sha256.Sum256(raw)
		if r.Digest != "sha256:"+hex.EncodeToString(sum[:]) || r.ID() == "" {
			t.Fatalf("bad record: id %q digest %s", r.ID(), r.Digest)
		}
		b := newBuilder("fuzz", DefaultLimits())
		b.add("fuzz.json", raw)
		db, err := b.finish()
		if err != nil {
			t.Fatalf("record parsed but did not load: %v", err)
		}
		// Probe every package with every version the record names.
		for _, a := range r.affected {
			probes := []string{"0", "0.0.1", "1.0.0", "v1.0.0", "(devel)", ""}
			for _, rg := range a.ranges {
				for _, e := range append(append([]event(nil), rg.events...), rg.limits...) {
					probes = append(probes, e.raw)
				}
			}
			for v := range a.versions {
				probes = append(probes, v)
			}
			if len(probes) > maxFuzzProbes {
				probes = probes[:maxFuzzProbes] // keep each input fast
			}
			for _, v := range probes {
				for _, eco := range []string{a.key.Ecosystem, a.ecosystem} {
					for _, fd := range db.Match(vulnref.Component{Ecosystem: eco, Name: a.key.Name, Version: v}) {
						if fd.ID != r.ID() || r.Withdrawn {
							t.Fatalf("finding %+v from record %s (withdrawn %v)", fd, r.ID(), r.Withdrawn)
						}
					}
				}
			}
		}
	})
}

// findData is dataDir without a testing.TB, "" when absent.
func findData() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			data := filepath.Join(dir, "..", "shared", "data", "osv")
			if _, err := os.Stat(filepath.Join(data, snap2026)); err == nil {
				return data
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
