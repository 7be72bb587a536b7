package osvdb

import (
	"reflect"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func symbolsOf(pairs ...string) *vulnref.Symbols {
	s := &vulnref.Symbols{Packages: map[string]map[string]struct{}{}}
	for i := 0; i+1 < len(pairs); i += 2 {
		m := s.Packages[pairs[i]]
		if m == nil {
			m = map[string]struct{}{}
			s.Packages[pairs[i]] = m
		}
		m[pairs[i+1]] = struct{}{}
	}
	return s
}

// TestMatchAllSymbolsLevels performs symbol-level matching against a
// binary's function list: a vulnerable symbol linked in makes the finding
// present and names it; a module whose vulnerable symbols are absent gives
// module-only; a whole-package import is present when the package is
// linked in; records without imports, binaries without a table and
// non-Go components count as present with a note; the same finding in
// two binaries is present if it is present in one.
func TestMatchAllSymbolsLevels(t *testing.T) {
	db := dbOf(t,
		`{"id":"GO-1","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},
		  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}],
		  "ecosystem_specific":{"imports":[{"path":"example.com/m/p","symbols":["Parse","T.Method"]}]}}]}`,
		`{"id":"GO-2","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},
		  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}],
		  "ecosystem_specific":{"imports":[{"path":"example.com/m/q","symbols":["Absent"]}]}}]}`,
		`{"id":"GO-3","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},
		  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}],
		  "ecosystem_specific":{"imports":[{"path":"example.com/m/p"}]}}]}`,
		`{"id":"GO-4","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},
		  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}`,
		`{"id":"GO-5","affected":[{"package":{"ecosystem":"Go","name":"stdlib"},
		  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.22.5"}]}],
		  "ecosystem_specific":{"imports":[{"path":"net/http","symbols":["Server.Serve"]}]}}]}`,
		`{"id":"DEB-1","affected":[{"package":{"ecosystem":"Debian:12","name":"zlib"},
		  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2"}]}]}]}`,
	)
	comps := []vulnref.Component{
		{Ecosystem: "Go", Name: "example.com/m", Version: "1.1.0", Location: "bin/a"},
		{Ecosystem: "Go", Name: "stdlib", Version: "1.22.3", Location: "bin/a"},
		{Ecosystem: "Go", Name: "stdlib", Version: "1.22.3", Location: "bin/b"},
		{Ecosystem: "Go", Name: "example.com/m", Version: "1.1.0", Location: "bin/stripped"},
		{Ecosystem: "Debian:12", Name: "zlib", Version: "1", Location: "dpkg:var/lib/dpkg/status"},
	}
	syms := map[string]*vulnref.Symbols{
		"bin/a": symbolsOf("example.com/m/p", "T.Method", "example.com/m/p", "Other", "example.com/m/q", "Present"),
		"bin/b": symbolsOf("net/http", "Server.Serve"),
	}
	// Only bin/a for the module: bin/stripped makes everything present.
	got := db.MatchAllSymbols(comps[:3], syms)
	type lv struct {
		id, level, note string
		syms            []string
	}
	var gotL []lv
	for _, f := range got {
		gotL = append(gotL, lv{f.ID, f.Level, f.LevelNote, f.Symbols})
	}
	want := []lv{
		{"GO-1", vulnref.LevelPresent, "", []string{"example.com/m/p.T.Method"}},
		{"GO-2", vulnref.LevelModuleOnly, "", nil},
		{"GO-3", vulnref.LevelPresent, "", []string{"example.com/m/p"}},
		{"GO-4", vulnref.LevelPresent, NoteNoSymbolData, nil},
		{"GO-5", vulnref.LevelPresent, "", []string{"net/http.Server.Serve"}},
	}
	if !reflect.DeepEqual(gotL, want) {
		t.Errorf("levels:\n got %+v\nwant %+v", gotL, want)
	}
	got = db.MatchAllSymbols(comps[3:], syms)
	if len(got) != 5 {
		t.Fatalf("%d findings, want 5: %+v", len(got), got)
	}
	for _, f := range got {
		wantNote := NoteNoSymbolTable
		switch f.ID {
		case "DEB-1":
			wantNote = NoteNotGoBinary
		case "GO-4":
			wantNote = NoteNoSymbolData
		}
		if f.Level != vulnref.LevelPresent || f.LevelNote != wantNote {
			t.Errorf("%s: level %q note %q, want present with %q", f.ID, f.Level, f.LevelNote, wantNote)
		}
	}
}
