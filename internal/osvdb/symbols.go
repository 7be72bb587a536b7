package osvdb

import (
	"sort"

	"github.com/ztota/ztota/internal/vulnref"
)

// Notes a finding carries when it counts as present without a vulnerable
// symbol being seen (Finding.LevelNote).
const (
	NoteNoSymbolData  = "the advisory names no vulnerable packages or symbols: counted as present"
	NoteNoSymbolTable = "no readable Go function table for this binary: counted as present"
	NoteNotGoBinary   = "package-level match: symbol-level matching applies to Go binaries only"
)

// MatchAllSymbols is MatchAll with each finding's level set from the
// functions linked into the Go binaries, as govulncheck's binary mode
// decides (-scan symbol): syms maps a component's Location to the symbols
// of the binary it was found in.
//
// A Go finding is present when one of the advisory's vulnerable packages
// has one of its listed symbols in the binary (any symbol, when the
// package lists none) — Symbols then names them — and module-only when
// none does. It counts as present, with a LevelNote saying why, when the
// matching entries name no packages, when the component's binary has no
// symbols in syms (a stripped or unreadable table, or a component from an
// SBOM), and for components of other ecosystems. The same finding from
// several binaries of one artifact is present if it is present in one.
func (db *DB) MatchAllSymbols(cs []vulnref.Component, syms map[string]*vulnref.Symbols) []vulnref.Finding {
	var out []vulnref.Finding
	for _, c := range cs {
		fs, hits, _ := db.evaluate(c)
		for i := range fs {
			setLevel(&fs[i], c, hits[i], syms[c.Location])
		}
		out = append(out, fs...)
	}
	sort.SliceStable(out, func(i, j int) bool { return findingLess(out[i], out[j]) })
	dedup := out[:0]
	for i, f := range out {
		if i > 0 && sameFinding(f, out[i-1]) {
			last := &dedup[len(dedup)-1]
			mergeLevel(last, f)
			continue
		}
		dedup = append(dedup, f)
	}
	return dedup
}

// setLevel decides a finding's level from the entries that matched.
func setLevel(f *vulnref.Finding, c vulnref.Component, hits []*affected, s *vulnref.Symbols) {
	f.Level, f.Symbols, f.LevelNote = vulnref.LevelPresent, nil, ""
	if base, _ := splitEcosystem(c.Ecosystem); base != ecoGo {
		f.LevelNote = NoteNotGoBinary
		return
	}
	for _, e := range hits {
		if len(e.imports) == 0 {
			f.LevelNote = NoteNoSymbolData
			return
		}
	}
	if s == nil {
		f.LevelNote = NoteNoSymbolTable
		return
	}
	found := map[string]bool{}
	for _, e := range hits {
		for _, imp := range e.imports {
			// As govulncheck's binary mode, the import's platforms are not
			// checked again here: the entry as a whole matched the binary's.
			if imp.path == "" || !s.HasPackage(imp.path) {
				continue
			}
			if len(imp.symbols) == 0 {
				found[imp.path] = true
				continue
			}
			for _, sym := range imp.symbols {
				if s.Has(imp.path, sym) {
					found[imp.path+"."+sym] = true
				}
			}
		}
	}
	if len(found) == 0 {
		f.Level = vulnref.LevelModuleOnly
		return
	}
	for k := range found {
		f.Symbols = append(f.Symbols, k)
	}
	sort.Strings(f.Symbols)
	f.Symbols = capSymbols(f.Symbols)
}

func capSymbols(s []string) []string {
	if len(s) > vulnref.MaxFindingSymbols {
		return s[:vulnref.MaxFindingSymbols]
	}
	return s
}

// mergeLevel folds the level of a duplicate finding g into f: present
// wins, symbols are united.
func mergeLevel(f *vulnref.Finding, g vulnref.Finding) {
	if f.Level == vulnref.LevelModuleOnly && g.Level != vulnref.LevelModuleOnly {
		f.Level, f.LevelNote = g.Level, g.LevelNote
	}
	if len(g.Symbols) == 0 {
		return
	}
	seen := map[string]bool{}
	for _, s := range f.Symbols {
		seen[s] = true
	}
	for _, s := range g.Symbols {
		if !seen[s] {
			f.Symbols = append(f.Symbols, s)
		}
	}
	sort.Strings(f.Symbols)
	f.Symbols = capSymbols(f.Symbols)
}
