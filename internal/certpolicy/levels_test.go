package certpolicy

import (
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

// levelFindings: one present Go finding, two module-only ones (one with
// an alias), and one Debian finding without a level.
func levelFindings() []vulnref.Finding {
	return []vulnref.Finding{
		{ID: "GO-2022-1059", Aliases: []string{"CVE-2022-32149"}, Ecosystem: "Go", Package: "golang.org/x/text",
			Version: "0.3.5", Severity: vulnref.SeverityUnknown, Level: vulnref.LevelPresent,
			Symbols: []string{"golang.org/x/text/language.Parse"}},
		{ID: "GO-2026-5932", Aliases: []string{"CVE-2026-0001"}, Ecosystem: "Go", Package: "golang.org/x/crypto",
			Version: "0.58.0", Severity: vulnref.SeverityUnknown, Level: vulnref.LevelModuleOnly},
		{ID: "GHSA-high", Ecosystem: "Go", Package: "example.com/m", Version: "1.0.0",
			Severity: vulnref.SeverityHigh, Level: vulnref.LevelModuleOnly},
		{ID: "CVE-2023-0001", Ecosystem: "Debian:12", Package: "openssl", Version: "3.0.1-1", Severity: vulnref.SeverityHigh},
	}
}

func evalLevels(t *testing.T, fields string, stmts ...string) (string, map[string]vulnref.Finding) {
	t.Helper()
	doc := `{"version":1,"name":"t","reject":"any"` + fields
	if len(stmts) > 0 {
		doc += `,"exceptions":` + vexDoc(stmts...)
	}
	p, err := Parse([]byte(doc + "}"))
	if err != nil {
		t.Fatal(err)
	}
	verdict, out := p.Evaluate(artifact, levelFindings())
	m := map[string]vulnref.Finding{}
	for _, f := range out {
		m[f.ID] = f
	}
	return verdict, m
}

// TestModuleOnlyFindingsDoNotBlockByDefault evaluates module-only findings
// under a policy without module_only: they are kept (with their level)
// but do not block; present findings and findings without a level still
// block, and a verdict with only module-only findings passes.
func TestModuleOnlyFindingsDoNotBlockByDefault(t *testing.T) {
	verdict, m := evalLevels(t, "")
	if verdict != VerdictFail {
		t.Errorf("verdict %s, want fail (a present finding)", verdict)
	}
	for id, want := range map[string]bool{"GO-2022-1059": true, "GO-2026-5932": false, "GHSA-high": false, "CVE-2023-0001": true} {
		if m[id].Blocking != want {
			t.Errorf("%s (level %q): blocking %v, want %v", id, m[id].Level, m[id].Blocking, want)
		}
	}
	if m["GO-2026-5932"].Level != vulnref.LevelModuleOnly {
		t.Errorf("level not kept: %+v", m["GO-2026-5932"])
	}
	p := Default()
	only := levelFindings()[1:3]
	if v, out := p.Evaluate(artifact, only); v != VerdictPass || len(out) != 2 || out[0].Blocking || out[1].Blocking {
		t.Errorf("module-only findings alone: verdict %s, %+v; want pass, recorded, not blocking", v, out)
	}
}

// TestModuleOnlyPolicyRules makes module-only findings block by the
// policy: all of them, those at or above a severity, or named advisories
// (by id or alias); and a VEX not_affected statement exempts either level.
func TestModuleOnlyPolicyRules(t *testing.T) {
	cases := []struct {
		name, fields string
		stmts        []string
		blocking     map[string]bool
		exempted     string
	}{
		{"all", `,"module_only":{"all":true}`, nil,
			map[string]bool{"GO-2022-1059": true, "GO-2026-5932": true, "GHSA-high": true}, ""},
		{"severity", `,"module_only":{"min_severity":"high"}`, nil,
			map[string]bool{"GO-2022-1059": true, "GO-2026-5932": false, "GHSA-high": true}, ""},
		{"advisory by alias", `,"module_only":{"advisories":["CVE-2026-0001"]}`, nil,
			map[string]bool{"GO-2022-1059": true, "GO-2026-5932": true, "GHSA-high": false}, ""},
		{"vex exempts a module-only finding that would block", `,"module_only":{"all":true}`,
			[]string{stmt(`{"name":"GO-2026-5932"}`, `{"@id":"sha256:`+artifact+`"}`, "not_affected", justified)},
			map[string]bool{"GO-2022-1059": true, "GO-2026-5932": false, "GHSA-high": true}, "GO-2026-5932"},
		{"vex exempts a present finding", "",
			[]string{stmt(`{"name":"CVE-2022-32149"}`, `{"@id":"pkg:golang/golang.org/x/text"}`, "not_affected", justified)},
			map[string]bool{"GO-2022-1059": false, "GO-2026-5932": false, "GHSA-high": false}, "GO-2022-1059"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, m := evalLevels(t, c.fields, c.stmts...)
			for id, want := range c.blocking {
				if m[id].Blocking != want {
					t.Errorf("%s: blocking %v, want %v", id, m[id].Blocking, want)
				}
			}
			if c.exempted != "" && !m[c.exempted].Exempted {
				t.Errorf("%s not exempted", c.exempted)
			}
		})
	}
}

// TestModuleOnlyRuleParsing: the rule is parsed strictly (unknown fields,
// an UNKNOWN or bogus severity, empty ids are refused), is part of the
// digest, and a policy without it keeps its earlier digest.
func TestModuleOnlyRuleParsing(t *testing.T) {
	for _, bad := range []string{
		`{"version":1,"name":"t","reject":"any","module_only":{"every":true}}`,
		`{"version":1,"name":"t","reject":"any","module_only":{"min_severity":"UNKNOWN"}}`,
		`{"version":1,"name":"t","reject":"any","module_only":{"min_severity":"severe"}}`,
		`{"version":1,"name":"t","reject":"any","module_only":{"advisories":[""]}}`,
		`{"version":1,"name":"t","reject":"any","module_only":{"advisories":[" GO-1"]}}`,
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s): no error", bad)
		}
	}
	plain, err := Parse([]byte(`{"version":1,"name":"t","reject":"any"}`))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := Parse([]byte(`{"version":1,"name":"t","reject":"any","module_only":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	withRule, err := Parse([]byte(`{"version":1,"name":"t","reject":"any","module_only":{"advisories":["GO-2","GO-1","GO-2"],"min_severity":"medium"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Digest() != empty.Digest() {
		t.Error("an empty module_only rule changes the digest")
	}
	if plain.Digest() == withRule.Digest() {
		t.Error("a module_only rule does not change the digest")
	}
	c, err := withRule.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"module_only":{"min_severity":"MODERATE","advisories":["GO-1","GO-2"]}`; !strings.Contains(string(c), want) {
		t.Errorf("canonical %s lacks %s", c, want)
	}
	again, err := Parse(c)
	if err != nil || again.Digest() != withRule.Digest() {
		t.Errorf("canonical form re-parsed: %v, digest %s vs %s", err, again.Digest(), withRule.Digest())
	}
}
