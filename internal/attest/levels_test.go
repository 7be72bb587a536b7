package attest

import (
	"errors"
	"slices"
	"testing"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/vulnref"
)

// TestPredicateCarriesLevelsAndSymbols signs a result with a present
// finding naming its symbols and a module-only one, reads it back and
// finds both levels and the symbols; a level outside the two, symbols on a
// module-only finding, and too many symbols are refused.
func TestPredicateCarriesLevelsAndSymbols(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	r := certResult()
	present := r.Findings[0]
	present.Exempted, present.Justification = false, ""
	present.Level, present.Symbols = vulnref.LevelPresent, []string{"golang.org/x/net/http2.Server.ServeConn"}
	moduleOnly := present
	moduleOnly.ID, moduleOnly.Level, moduleOnly.Symbols = "GO-2026-5932", vulnref.LevelModuleOnly, nil
	r.Findings = []vulnref.Finding{present, moduleOnly}
	got, err := ReadResult(f.sign(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != 2 || got.Findings[0].Level != vulnref.LevelPresent ||
		!slices.Equal(got.Findings[0].Symbols, present.Symbols) || got.Findings[1].Level != vulnref.LevelModuleOnly {
		t.Errorf("findings read back %+v", got.Findings)
	}
	for name, mod := range map[string]func(*vulnref.Finding){
		"unknown level":          func(x *vulnref.Finding) { x.Level = "maybe" },
		"module-only w/ symbols": func(x *vulnref.Finding) { x.Level = vulnref.LevelModuleOnly },
		"too many symbols": func(x *vulnref.Finding) {
			x.Symbols = slices.Repeat([]string{"p.F"}, vulnref.MaxFindingSymbols+1)
		},
	} {
		bad := r
		bad.Findings = []vulnref.Finding{present}
		bad.Findings[0].Symbols = slices.Clone(present.Symbols)
		mod(&bad.Findings[0])
		if _, err := Sign([]Subject{artifact, sbom}, bad, f.certify[0]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Sign err = %v, want ErrMalformed", name, err)
		}
	}
}
