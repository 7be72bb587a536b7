package osvdb

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/semver"

	"github.com/ztota/ztota/internal/vulnref"
)

// rec builds an OSV record; extra is spliced in as further top-level fields.
func rec(id, extra string, affected ...string) string {
	if extra != "" {
		extra = "," + extra
	}
	return fmt.Sprintf(`{"schema_version":"1.7.0","id":%q,"modified":"2025-01-01T00:00:00Z","summary":"test %s","affected":[%s]%s}`,
		id, id, strings.Join(affected, ","), extra)
}

// aff builds an affected entry with the given ranges (each "TYPE:events")
// and optional versions list.
func aff(eco, name string, versions []string, ranges ...string) string {
	var rs []string
	for _, r := range ranges {
		typ, evs, _ := strings.Cut(r, ":")
		rs = append(rs, fmt.Sprintf(`{"type":%q,"events":[%s]}`, typ, evs))
	}
	s := fmt.Sprintf(`{"package":{"ecosystem":%q,"name":%q},"ranges":[%s]`, eco, name, strings.Join(rs, ","))
	if versions != nil {
		s += fmt.Sprintf(`,"versions":["%s"]`, strings.Join(versions, `","`))
	}
	return s + "}"
}

// ev formats events: "i:0", "f:1.2.0", "l:1.2.0", "x:2.0.0" (limit).
func ev(evs ...string) string {
	names := map[string]string{"i": "introduced", "f": "fixed", "l": "last_affected", "x": "limit"}
	var out []string
	for _, e := range evs {
		k, v, _ := strings.Cut(e, ":")
		out = append(out, fmt.Sprintf(`{%q:%q}`, names[k], v))
	}
	return strings.Join(out, ",")
}

func TestEvaluationAlgorithm(t *testing.T) {
	const pkg = "example.com/mod"
	basic := rec("T-BASIC", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "f:1.2.0")))
	type probe struct {
		version string
		want    map[string]string // id -> Fixed
	}
	tests := []struct {
		name    string
		records []string
		eco     string
		pkg     string
		probes  []probe
	}{
		{"introduced 0 / fixed", []string{basic}, "Go", pkg, []probe{
			{"0.0.1", map[string]string{"T-BASIC": "1.2.0"}},
			{"1.1.9", map[string]string{"T-BASIC": "1.2.0"}},
			{"1.2.0-rc.1", map[string]string{"T-BASIC": "1.2.0"}},
			{"1.2.0", nil},
			{"1.10.0", nil},
		}},
		{"introduced above 0", []string{rec("T-INTRO", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:1.0.0", "f:1.2.0")))}, "Go", pkg, []probe{
			{"0.9.9", nil},
			{"1.0.0", map[string]string{"T-INTRO": "1.2.0"}},
		}},
		{"last_affected", []string{rec("T-LAST", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:1.0.0", "l:1.2.0")))}, "Go", pkg, []probe{
			{"1.2.0", map[string]string{"T-LAST": ""}},
			{"1.2.1", nil},
			{"0.1.0", nil},
		}},
		{"unsorted events, several introduced/fixed pairs", []string{rec("T-MULTI", "",
			aff("Go", pkg, nil, "SEMVER:"+ev("i:2.0.0", "f:2.1.0", "i:0", "f:1.5.0")))}, "Go", pkg, []probe{
			{"1.0.0", map[string]string{"T-MULTI": "1.5.0"}},
			{"1.6.0", nil},
			{"2.0.5", map[string]string{"T-MULTI": "2.1.0"}},
			{"2.1.0", nil},
		}},
		{"introduced without fixed", []string{rec("T-OPEN", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:1.0.0")))}, "Go", pkg, []probe{
			{"99.0.0", map[string]string{"T-OPEN": ""}},
			{"0.9.0", nil},
		}},
		{"limit", []string{rec("T-LIMIT", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "x:2.0.0"))),
			rec("T-STAR", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "x:*")))}, "Go", pkg, []probe{
			{"1.9.9", map[string]string{"T-LIMIT": "", "T-STAR": ""}},
			{"2.0.0", map[string]string{"T-STAR": ""}},
		}},
		{"versions list only", []string{rec("T-VERS", "", aff("Go", pkg, []string{"1.3.0", "1.4.0"}))}, "Go", pkg, []probe{
			{"1.3.0", map[string]string{"T-VERS": ""}},
			{"v1.4.0", map[string]string{"T-VERS": ""}},
			{"1.3.1", nil},
		}},
		{"GIT range ignored, versions honoured", []string{rec("T-GIT", "", aff("Go", pkg, []string{"1.0.0"},
			`GIT:{"introduced":"0"},{"fixed":"6e3b8c3f3a1d"}`))}, "Go", pkg, []probe{
			{"1.0.0", map[string]string{"T-GIT": ""}},
			{"1.1.0", nil},
		}},
		{"withdrawn never matches", []string{rec("T-WD", `"withdrawn":"2025-02-01T00:00:00Z"`, aff("Go", pkg, []string{"1.0.0"}, "SEMVER:"+ev("i:0"))), basic}, "Go", pkg, []probe{
			{"1.0.0", map[string]string{"T-BASIC": "1.2.0"}},
		}},
		{"multiple ranges", []string{rec("T-RANGES", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "f:1.0.0"), "SEMVER:"+ev("i:2.0.0", "f:2.2.0")))}, "Go", pkg, []probe{
			{"0.5.0", map[string]string{"T-RANGES": "1.0.0"}},
			{"1.5.0", nil},
			{"2.1.0", map[string]string{"T-RANGES": "2.2.0"}},
		}},
		{"overlapping ranges give the lowest fixed", []string{rec("T-OVER", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "f:3.0.0"), "SEMVER:"+ev("i:1.0.0", "f:1.5.0")))}, "Go", pkg, []probe{
			{"1.2.0", map[string]string{"T-OVER": "1.5.0"}},
			{"2.0.0", map[string]string{"T-OVER": "3.0.0"}},
		}},
		{"multiple affected entries", []string{rec("T-AFF", "",
			aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "f:1.0.0")),
			aff("Go", pkg, nil, "SEMVER:"+ev("i:3.0.0", "f:3.1.0")),
			aff("Go", "example.com/other", nil, "SEMVER:"+ev("i:0")))}, "Go", pkg, []probe{
			{"0.1.0", map[string]string{"T-AFF": "1.0.0"}},
			{"2.0.0", nil},
			{"3.0.1", map[string]string{"T-AFF": "3.1.0"}},
		}},
		{"go pseudo-versions order as prereleases", []string{rec("T-PSEUDO", "",
			aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "f:0.0.0-20200220183623-bac4c82f6975"), "SEMVER:"+ev("i:1.2.0", "f:1.2.4-0.20210226172049-e18ecbb05110")))}, "Go", pkg, []probe{
			{"0.0.0-20190101000000-abcdefabcdef", map[string]string{"T-PSEUDO": "0.0.0-20200220183623-bac4c82f6975"}},
			{"v0.0.0-20200220183623-bac4c82f6975", nil},
			{"1.2.3", map[string]string{"T-PSEUDO": "1.2.4-0.20210226172049-e18ecbb05110"}},
			{"1.2.4-0.20210101000000-aaaaaaaaaaaa", map[string]string{"T-PSEUDO": "1.2.4-0.20210226172049-e18ecbb05110"}},
			{"1.2.4", nil},
		}},
		{"stdlib release names", []string{rec("T-STD", "", aff("Go", "stdlib", nil, "SEMVER:"+ev("i:1.21.0-0", "f:1.21.5")))}, "Go", "stdlib", []probe{
			{"go1.21.4", map[string]string{"T-STD": "1.21.5"}},
			{"1.21", map[string]string{"T-STD": "1.21.5"}},
			{"go1.21rc2", map[string]string{"T-STD": "1.21.5"}},
			{"go1.21.5", nil},
			{"1.20.14", nil},
		}},
		{"ECOSYSTEM range in Go", []string{rec("T-GOECO", "", aff("Go", pkg, nil, "ECOSYSTEM:"+ev("i:0", "f:2.0.0")))}, "Go", pkg, []probe{
			{"v1.9.0", map[string]string{"T-GOECO": "2.0.0"}},
			{"2.0.0", nil},
		}},
		{"ECOSYSTEM range with Debian versions", []string{rec("T-DEB", "", aff("Debian:12", "openssl", nil, "ECOSYSTEM:"+ev("i:0", "f:3.0.11-1~deb12u1")))}, "Debian", "openssl", []probe{
			{"3.0.9-1", map[string]string{"T-DEB": "3.0.11-1~deb12u1"}},
			{"3.0.11-1~deb11u1", map[string]string{"T-DEB": "3.0.11-1~deb12u1"}},
			{"3.0.11-1~deb12u1", nil},
			{"3.0.11-1", nil},
			{"1:0.9.0", nil}, // epoch 1 outranks any epoch-0 version
		}},
		{"Debian release must agree when given", []string{rec("T-DEB", "", aff("Debian:12", "openssl", nil, "ECOSYSTEM:"+ev("i:0", "f:3.0.11-1~deb12u1")))}, "Debian:11", "openssl", []probe{
			{"3.0.9-1", nil},
		}},
		{"Debian release equal", []string{rec("T-DEB", "", aff("Debian:12", "openssl", nil, "ECOSYSTEM:"+ev("i:0", "f:3.0.11-1~deb12u1")))}, "Debian:12", "openssl", []probe{
			{"3.0.9-1", map[string]string{"T-DEB": "3.0.11-1~deb12u1"}},
		}},
		{"other package or ecosystem does not match", []string{basic}, "npm", pkg, []probe{{"1.0.0", nil}}},
		{"last_affected and fixed in one range", []string{rec("T-MIX", "", aff("Go", pkg, nil, "SEMVER:"+ev("i:0", "f:1.0.0", "i:2.0.0", "l:2.3.0")))}, "Go", pkg, []probe{
			{"0.9.0", map[string]string{"T-MIX": "1.0.0"}},
			{"2.3.0", map[string]string{"T-MIX": ""}},
			{"2.3.1", nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := dbOf(t, tc.records...)
			for _, p := range tc.probes {
				c := vulnref.Component{Ecosystem: tc.eco, Name: tc.pkg, Version: p.version}
				fs, err := db.Evaluate(c)
				if err != nil {
					t.Errorf("%s: Evaluate error: %v", p.version, err)
				}
				got := map[string]string{}
				for _, f := range fs {
					got[f.ID] = f.Fixed
				}
				want := p.want
				if want == nil {
					want = map[string]string{}
				}
				if !maps.Equal(got, want) {
					t.Errorf("%s %s@%s: got %v, want %v", tc.eco, tc.pkg, p.version, got, want)
				}
			}
		})
	}
}

func TestEvaluateUnparsableComponentVersion(t *testing.T) {
	db := dbOf(t,
		rec("T-A", "", aff("Go", "example.com/mod", []string{"(devel)"}, "SEMVER:"+ev("i:0"))),
		rec("T-B", "", aff("Debian", "zlib", nil, "ECOSYSTEM:"+ev("i:0", "f:1.3"))))
	fs, err := db.Evaluate(vulnref.Component{Ecosystem: "Go", Name: "example.com/mod", Version: "(devel)"})
	if !errors.Is(err, ErrBadVersion) {
		t.Errorf("Evaluate((devel)) error = %v, want ErrBadVersion", err)
	}
	if len(fs) != 1 || fs[0].ID != "T-A" {
		t.Errorf("versions[] match lost: %v", fs)
	}
	if fs := db.Match(vulnref.Component{Ecosystem: "Go", Name: "example.com/mod", Version: ""}); len(fs) != 0 {
		t.Errorf("empty version matched %v", fs)
	}
	if _, err := db.Evaluate(vulnref.Component{Ecosystem: "Debian", Name: "zlib", Version: "x:1.2"}); !errors.Is(err, ErrBadVersion) {
		t.Errorf("bad Debian version: err = %v", err)
	}
	// Unknown packages are no error.
	if fs, err := db.Evaluate(vulnref.Component{Ecosystem: "Go", Name: "example.com/none", Version: "(devel)"}); err != nil || fs != nil {
		t.Errorf("unknown package: %v %v", fs, err)
	}
}

func TestSeverity(t *testing.T) {
	const pkg = "example.com/mod"
	a := aff("Go", pkg, nil, "SEMVER:"+ev("i:0"))
	tests := []struct {
		record   string
		severity string
		score    float64
	}{
		{rec("S-31", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]`, a), vulnref.SeverityCritical, 9.8},
		{rec("S-30", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"}]`, a), vulnref.SeverityModerate, 5.4},
		{rec("S-40", `"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]`, a), vulnref.SeverityCritical, 9.3},
		{rec("S-20", `"severity":[{"type":"CVSS_V2","score":"AV:N/AC:L/Au:N/C:P/I:P/A:P"}]`, a), vulnref.SeverityHigh, 7.5},
		{rec("S-LOW", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}]`, a), vulnref.SeverityLow, 1.6},
		{rec("S-MAX", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"},{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N"}]`, a), vulnref.SeverityCritical, 9.1},
		{rec("S-BADVEC", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:X"}],"database_specific":{"severity":"HIGH"}`, a), vulnref.SeverityHigh, 0},
		{rec("S-DBMED", `"database_specific":{"severity":"MEDIUM"}`, a), vulnref.SeverityModerate, 0},
		{rec("S-ECO", "", `{"package":{"ecosystem":"Go","name":"`+pkg+`"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}],"ecosystem_specific":{"severity":"LOW"}}`), vulnref.SeverityLow, 0},
		{rec("S-AFFSEV", "", `{"package":{"ecosystem":"Go","name":"`+pkg+`"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`), vulnref.SeverityCritical, 9.8},
		{rec("S-NONE", "", a), vulnref.SeverityUnknown, 0},
	}
	for _, tc := range tests {
		db := dbOf(t, tc.record)
		fs := db.Match(vulnref.Component{Ecosystem: "Go", Name: pkg, Version: "1.0.0"})
		if len(fs) != 1 {
			t.Fatalf("%s: %d findings", tc.record, len(fs))
		}
		if fs[0].Severity != tc.severity || fs[0].Score != tc.score {
			t.Errorf("%s: severity %s %.1f, want %s %.1f", fs[0].ID, fs[0].Severity, fs[0].Score, tc.severity, tc.score)
		}
	}
}

func TestMatchAll(t *testing.T) {
	db := dbOf(t,
		rec("T-1", "", aff("Go", "a.example/x", nil, "SEMVER:"+ev("i:0", "f:2.0.0"))),
		rec("T-2", "", aff("Go", "a.example/x", nil, "SEMVER:"+ev("i:0")), aff("Go", "b.example/y", nil, "SEMVER:"+ev("i:0"))))
	cs := []vulnref.Component{
		{Ecosystem: "Go", Name: "b.example/y", Version: "1.0.0"},
		{Ecosystem: "Go", Name: "a.example/x", Version: "1.0.0", Location: "bin/a"},
		{Ecosystem: "Go", Name: "a.example/x", Version: "1.0.0", Location: "bin/b"},
		{Ecosystem: "Go", Name: "unknown.example/z", Version: "1.0.0"},
	}
	fs := db.MatchAll(cs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID+" "+f.Package)
	}
	want := []string{"T-1 a.example/x", "T-2 a.example/x", "T-2 b.example/y"}
	if !slices.Equal(got, want) {
		t.Errorf("MatchAll = %v, want %v", got, want)
	}
	if db.Packages() != 2 {
		t.Errorf("Packages = %d, want 2", db.Packages())
	}
}

// TestMatchAgainstOracle checks Match on every package of the 2026
// snapshot, probing each event version and its neighbours, against a
// direct reading of the OSV algorithm ordered by golang.org/x/mod/semver
// (a comparator independent of the one Match uses).
func TestMatchAgainstOracle(t *testing.T) {
	db := snapshot(t, snap2026)
	probes := map[vulnref.Key]map[string]bool{}
	for _, id := range db.IDs() {
		r, _ := db.Record(id)
		for _, a := range r.Vuln.GetAffected() {
			k := vulnref.Key{Ecosystem: a.GetPackage().GetEcosystem(), Name: a.GetPackage().GetName()}
			if probes[k] == nil {
				probes[k] = map[string]bool{"0.0.0": true, "999.0.0": true}
			}
			for _, rg := range a.GetRanges() {
				for _, e := range rg.GetEvents() {
					for _, v := range []string{e.GetIntroduced(), e.GetFixed(), e.GetLastAffected()} {
						if v != "" && v != "0" {
							probes[k][v] = true
							probes[k][v+"-0"] = !strings.Contains(v, "-") // just below v
							probes[k][bumpPatch(v)] = true
						}
					}
				}
			}
		}
	}
	byKey := map[vulnref.Key][]*Record{}
	for _, id := range db.IDs() {
		r, _ := db.Record(id)
		seen := map[vulnref.Key]bool{}
		for _, a := range r.Vuln.GetAffected() {
			k := vulnref.Key{Ecosystem: a.GetPackage().GetEcosystem(), Name: a.GetPackage().GetName()}
			if !seen[k] {
				seen[k] = true
				byKey[k] = append(byKey[k], r)
			}
		}
	}
	checked := 0
	for k, vs := range probes {
		for v, ok := range vs {
			if !ok {
				continue
			}
			expect := oracle(byKey[k], k, v)
			got := map[string]string{}
			for _, f := range db.Match(vulnref.Component{Ecosystem: k.Ecosystem, Name: k.Name, Version: v}) {
				got[f.ID] = f.Fixed
			}
			if !maps.Equal(got, expect) {
				t.Fatalf("%s@%s: Match %v, oracle %v", k.Name, v, got, expect)
			}
			checked++
		}
	}
	if checked < 10000 {
		t.Errorf("only %d probes checked", checked)
	}
	t.Logf("%d (package, version) probes agree with the oracle", checked)
}

func bumpPatch(v string) string {
	core, _, _ := strings.Cut(v, "-")
	core, _, _ = strings.Cut(core, "+")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v
	}
	var n int
	fmt.Sscan(parts[2], &n)
	return fmt.Sprintf("%s.%s.%d", parts[0], parts[1], n+1)
}

// oracle evaluates the non-withdrawn records among recs for (k, v) the
// naive way: the OSV algorithm over events sorted with x/mod/semver.
func oracle(recs []*Record, k vulnref.Key, v string) map[string]string {
	out := map[string]string{}
	sv := "v" + v
	less := func(a, b string) int {
		if a == "0" {
			a = "0.0.0-0"
		}
		if b == "0" {
			b = "0.0.0-0"
		}
		return semver.Compare("v"+a, "v"+b)
	}
	for _, r := range recs {
		if r.Withdrawn {
			continue
		}
		id := r.ID()
		hit, fixed := false, ""
		for _, a := range r.Vuln.GetAffected() {
			if a.GetPackage().GetEcosystem() != k.Ecosystem || a.GetPackage().GetName() != k.Name {
				continue
			}
			if slices.Contains(a.GetVersions(), v) {
				hit = true
			}
			for _, rg := range a.GetRanges() {
				type e struct{ kind, ver string }
				var es []e
				for _, x := range rg.GetEvents() {
					switch {
					case x.GetIntroduced() != "":
						es = append(es, e{"i", x.GetIntroduced()})
					case x.GetFixed() != "":
						es = append(es, e{"f", x.GetFixed()})
					case x.GetLastAffected() != "":
						es = append(es, e{"l", x.GetLastAffected()})
					}
				}
				sort.SliceStable(es, func(i, j int) bool { return less(es[i].ver, es[j].ver) < 0 })
				affected := false
				for _, x := range es {
					c := semver.Compare(sv, "v"+x.ver)
					switch {
					case x.kind == "i" && (x.ver == "0" || c >= 0):
						affected = true
					case x.kind == "f" && c >= 0:
						affected = false
					case x.kind == "l" && c > 0:
						affected = false
					}
				}
				if !affected {
					continue
				}
				hit = true
				for _, x := range es {
					if x.kind == "f" && semver.Compare(sv, "v"+x.ver) < 0 {
						if fixed == "" || less(x.ver, fixed) < 0 {
							fixed = x.ver
						}
						break
					}
				}
			}
		}
		if hit {
			out[id] = fixed
		}
	}
	return out
}

// TestPlatformRestrictedGoAdvisories: a Go advisory whose imports are all
// limited to other platforms does not match a binary built for this one,
// as govulncheck decides; an unknown platform still matches.
func TestPlatformRestrictedGoAdvisories(t *testing.T) {
	raw := `{"id":"GO-TEST-1","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},
		"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}],
		"ecosystem_specific":{"imports":[{"path":"example.com/m/win","goos":["windows"]},{"path":"example.com/m/arm","goarch":["arm64"],"goos":["linux"]}]}}]}`
	db := dbOf(t, raw)
	for _, c := range []struct {
		goos, goarch string
		want         bool
	}{
		{"", "", true}, {"windows", "amd64", true}, {"linux", "amd64", false}, {"linux", "arm64", true}, {"darwin", "arm64", false},
	} {
		got := len(db.Match(vulnref.Component{Ecosystem: "Go", Name: "example.com/m", Version: "1.0.0", GOOS: c.goos, GOARCH: c.goarch})) == 1
		if got != c.want {
			t.Errorf("%s/%s: matched %v, want %v", c.goos, c.goarch, got, c.want)
		}
	}
}
