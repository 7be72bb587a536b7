package demo

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/ztota/ztota/internal/vulnfixture"
)

func zipFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

// sameRecord reports whether the embedded record e is the snapshot's
// record b without its credits member.
func sameRecord(t *testing.T, e, b []byte) bool {
	t.Helper()
	var ev, bv map[string]any
	if err := json.Unmarshal(e, &ev); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &bv); err != nil {
		t.Fatal(err)
	}
	if _, ok := ev["credits"]; ok {
		return false
	}
	delete(bv, "credits")
	return reflect.DeepEqual(ev, bv)
}

// TestEmbeddedRecordsAreTheSnapshots checks the demo's embedded data
// against the full snapshots: exactly the records that name
// golang.org/x/text, the same but for their credits, and GO-2026-5970 only in the newer.
func TestEmbeddedRecordsAreTheSnapshots(t *testing.T) {
	for _, c := range []struct {
		name     string
		embedded []byte
		want     []string
	}{
		{snapshotOldName, snapshotOld, []string{"GO-2020-0015.json", "GO-2021-0113.json", "GO-2022-1059.json"}},
		{snapshotNewName, snapshotNew, []string{"GO-2020-0015.json", "GO-2021-0113.json", "GO-2022-1059.json", "GO-2026-5970.json"}},
	} {
		got := zipFiles(t, c.embedded)
		var names []string
		for n := range got {
			names = append(names, n)
		}
		sort.Strings(names)
		if !slices.Equal(names, c.want) {
			t.Errorf("%s: embedded records %v, want %v", c.name, names, c.want)
		}
	}
	osv, err := vulnfixture.FindOSVData()
	if err != nil {
		t.Skipf("SKIPPING the comparison with the full snapshots: %v", err)
	}
	for name, embedded := range map[string][]byte{snapshotOldName: snapshotOld, snapshotNewName: snapshotNew} {
		full, err := readFile(filepath.Join(osv, name+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		all := zipFiles(t, full)
		got := zipFiles(t, embedded)
		for n, b := range all {
			mentions := bytes.Contains(b, []byte(`"golang.org/x/text"`))
			e, ok := got[n]
			switch {
			case mentions && !ok:
				t.Errorf("%s: %s names golang.org/x/text but is not embedded", name, n)
			case !mentions && ok:
				t.Errorf("%s: %s is embedded but does not name golang.org/x/text", name, n)
			case ok && !sameRecord(t, e, b):
				t.Errorf("%s: embedded %s differs from the snapshot's", name, n)
			}
		}
		for n := range got {
			if _, ok := all[n]; !ok {
				t.Errorf("%s: embedded %s is not in the snapshot", name, n)
			}
		}
	}
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
