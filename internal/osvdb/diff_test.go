package osvdb

import (
	"slices"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func TestDiffSynthetic(t *testing.T) {
	a := func(name string) string { return aff("Go", name, nil, "SEMVER:"+ev("i:0")) }
	old := dbOf(t,
		rec("D-SAME", "", a("same.example/m")),
		rec("D-GONE", "", a("gone.example/m")),
		rec("D-MOD", "", a("renamed.example/old")),
		rec("D-WD", "", a("wd.example/m")),
		rec("D-WD2", `"withdrawn":"2025-01-01T00:00:00Z"`, a("wd2.example/m")))
	newer := dbOf(t,
		rec("D-SAME", "", a("same.example/m")),
		rec("D-MOD", "", a("renamed.example/new")),
		rec("D-WD", `"withdrawn":"2025-03-01T00:00:00Z"`, a("wd.example/m")),
		rec("D-WD2", `"withdrawn":"2025-02-01T00:00:00Z"`, a("wd2.example/m")),
		rec("D-NEW", "", a("new.example/m"), aff("Debian:12", "zlib", nil, "ECOSYSTEM:"+ev("i:0"))))
	d := Diff(old, newer)
	check := func(name string, got, want []string) {
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("Added", d.Added, []string{"D-NEW"})
	check("Removed", d.Removed, []string{"D-GONE"})
	check("Modified", d.Modified, []string{"D-MOD", "D-WD2"}) // D-WD2 was already withdrawn
	check("Withdrawn", d.Withdrawn, []string{"D-WD"})
	wantPkgs := []vulnref.Key{
		{Ecosystem: "Debian:12", Name: "zlib"},
		{Ecosystem: "Go", Name: "gone.example/m"},
		{Ecosystem: "Go", Name: "new.example/m"},
		{Ecosystem: "Go", Name: "renamed.example/new"},
		{Ecosystem: "Go", Name: "renamed.example/old"},
		{Ecosystem: "Go", Name: "wd.example/m"},
		{Ecosystem: "Go", Name: "wd2.example/m"},
	}
	if !slices.Equal(d.Packages, wantPkgs) {
		t.Errorf("Packages = %v\nwant %v", d.Packages, wantPkgs)
	}
	if d.Empty() {
		t.Error("Empty() on a non-empty change")
	}
	// Against nothing, everything is added.
	if all := Diff(nil, newer); len(all.Added) != newer.Len() || len(all.Removed) != 0 {
		t.Errorf("Diff(nil, db) = %+v", all)
	}
	// The withdrawn record stops matching in the new snapshot.
	c := vulnref.Component{Ecosystem: "Go", Name: "wd.example/m", Version: "1.0.0"}
	if len(old.Match(c)) != 1 || len(newer.Match(c)) != 0 {
		t.Errorf("withdrawal not reflected: old %v new %v", old.Match(c), newer.Match(c))
	}
}
