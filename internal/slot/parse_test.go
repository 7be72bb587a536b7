package slot

import (
	"strings"
	"testing"
	"time"
)

var digest = strings.Repeat("ab", 32)

func validState() State {
	return State{Active: A, Pending: B, BootCount: 1, MaxBoots: 3, Slots: map[string]Meta{
		A: {Target: "app/1/app.tar.gz", Name: "app", Version: "1", ReleaseCounter: 1, SHA256: digest, Length: 10, ArtifactType: ArtifactBundle, InstalledAt: time.Unix(1700000000, 0).UTC()},
		B: {Target: "app/2/app.tar.gz", Name: "app", Version: "2", ReleaseCounter: 2, SHA256: digest, Length: 11, ArtifactType: ArtifactBundle},
	}}
}

func TestStateRoundTrips(t *testing.T) {
	b, err := MarshalState(validState())
	must(t, err)
	st, err := ParseState(b)
	must(t, err)
	if st.Active != A || st.Pending != B || st.BootCount != 1 || st.Slots[A].InstalledAt.Unix() != 1700000000 || st.Slots[B].ReleaseCounter != 2 {
		t.Fatalf("round trip = %+v", st)
	}
}

func TestMalformedStateIsRejected(t *testing.T) {
	good, err := MarshalState(validState())
	must(t, err)
	g := string(good)
	for name, data := range map[string]string{
		"unknown field":         strings.Replace(g, `"active"`, `"evil": 1, "active"`, 1),
		"duplicate key":         strings.Replace(g, `"active": "a"`, `"active": "a", "active": "b"`, 1),
		"bad slot name":         strings.Replace(g, `"active": "a"`, `"active": "c"`, 1),
		"bad slots key":         strings.Replace(g, `"a": {`, `"../a": {`, 1),
		"pending equals active": strings.Replace(g, `"pending": "b"`, `"pending": "a"`, 1),
		"named slot empty":      `{"version":1,"active":"a","pending":"","boot_count":0,"max_boots":3,"slots":{}}`,
		"wrong version":         strings.Replace(g, `"version": 1`, `"version": 2`, 1),
		"trailing data":         g + "{}",
		"invalid UTF-8":         strings.Replace(g, `"app"`, "\"\xff\"", 1),
		"upper-case digest":     strings.Replace(g, digest, strings.ToUpper(digest), 1),
		"negative length":       strings.Replace(g, `"length": 10`, `"length": -10`, 1),
		"count without pending": strings.Replace(g, `"pending": "b"`, `"pending": ""`, 1),
		"unsupported type":      strings.Replace(g, `"artifact_type": "bundle"`, `"artifact_type": "rootfs"`, 1),
		"oversize":              g + strings.Repeat(" ", MaxStateBytes),
		"wrong type":            strings.Replace(g, `"boot_count": 1`, `"boot_count": "1"`, 1),
		"deep nesting":          strings.Repeat("[", 100),
		"huge max_boots":        strings.Replace(g, `"max_boots": 3`, `"max_boots": 100000`, 1),
	} {
		if data == g {
			t.Fatalf("%s: test mutation did not apply", name)
		}
		if _, err := ParseState([]byte(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMalformedManifestIsRejected(t *testing.T) {
	good := `{"version":1,"slot":"a","artifact_sha256":"` + digest + `","entries":[{"path":"bin","type":"dir","mode":493},{"path":"bin/app","type":"file","mode":493,"size":3,"sha256":"` + digest + `"},{"path":"cur","type":"symlink","target":"bin/app"}]}`
	if _, err := ParseManifest([]byte(good)); err != nil {
		t.Fatalf("good manifest rejected: %v", err)
	}
	for name, data := range map[string]string{
		"dotdot path":    strings.Replace(good, `"path":"bin/app"`, `"path":"../app"`, 1),
		"absolute path":  strings.Replace(good, `"path":"bin/app"`, `"path":"/bin/app"`, 1),
		"unclean path":   strings.Replace(good, `"path":"bin/app"`, `"path":"bin//app"`, 1),
		"duplicate path": strings.Replace(good, `"path":"cur"`, `"path":"bin"`, 1),
		"unknown type":   strings.Replace(good, `"type":"symlink"`, `"type":"fifo"`, 1),
		"setuid mode":    strings.Replace(good, `"mode":493,"size"`, `"mode":2541,"size"`, 1),
		"unknown field":  strings.Replace(good, `"version":1`, `"version":1,"x":0`, 1),
		"bad slot":       strings.Replace(good, `"slot":"a"`, `"slot":"z"`, 1),
		"file no digest": strings.Replace(good, `"size":3,"sha256":"`+digest+`"`, `"size":3`, 1),
	} {
		if data == good {
			t.Fatalf("%s: test mutation did not apply", name)
		}
		if _, err := ParseManifest([]byte(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseState(f *testing.F) {
	good, _ := MarshalState(validState())
	f.Add(good)
	f.Add([]byte(`{"version":1,"active":"","pending":"","boot_count":0,"max_boots":1,"slots":{}}`))
	f.Add([]byte(`{"version":1,"active":"a","active":"b"}`))
	f.Add([]byte("[[[[[[[["))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState(data)
		if err != nil {
			return
		}
		// Whatever parses must satisfy the invariants and survive a round trip.
		if st.Pending != "" && st.Pending == st.Active {
			t.Fatalf("accepted pending == active: %+v", st)
		}
		b, err := MarshalState(st)
		if err != nil {
			t.Fatalf("parsed state does not marshal: %v", err)
		}
		if _, err := ParseState(b); err != nil {
			t.Fatalf("round trip fails: %v", err)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"slot":"a","artifact_sha256":"` + digest + `","entries":[{"path":"bin","type":"dir","mode":493}]}`))
	f.Add([]byte(`{"version":1,"slot":"b","artifact_sha256":"` + digest + `","entries":[{"path":"../x","type":"file"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, e := range m.Entries {
			if strings.HasPrefix(e.Path, "/") || e.Path == ".." || strings.HasPrefix(e.Path, "../") || strings.Contains(e.Path, "/../") {
				t.Fatalf("accepted escaping path %q", e.Path)
			}
		}
	})
}
