package vulnfixture

import (
	"reflect"
	"testing"
)

// TestFindingIDsSymbolLevel reads a -scan symbol stream: module- and
// package-level findings (no function in the first frame) are not
// symbol-level findings; those naming a function are.
func TestFindingIDsSymbolLevel(t *testing.T) {
	stream := `{"finding":{"osv":"GO-1","trace":[{"module":"m","version":"v1"}]}}
{"finding":{"osv":"GO-2","trace":[{"module":"m","package":"m/p"}]}}
{"finding":{"osv":"GO-2","trace":[{"module":"m","package":"m/p","function":"F"}]}}
{"finding":{"osv":"GO-3"}}
{"finding":{"osv":"GO-4","trace":[{"module":"m","package":"m/q","function":"T.M","receiver":"*T"}]}}`
	ids, err := findingIDs([]byte(stream), true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"GO-2", "GO-4"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("symbol-level ids %v, want %v", ids, want)
	}
	all, _ := findingIDs([]byte(stream), false)
	if want := []string{"GO-1", "GO-2", "GO-3", "GO-4"}; !reflect.DeepEqual(all, want) {
		t.Errorf("all ids %v, want %v", all, want)
	}
	if _, err := ScanLevelIDs(t.Context(), "govulncheck", t.TempDir(), "x", "package"); err == nil {
		t.Error("unknown scan level accepted")
	}
}
