package certpolicy

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/vulnref"
)

// vexDoc wraps statements (JSON objects) in an OpenVEX 0.2.0 document.
func vexDoc(statements ...string) string {
	return `{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://ztota.example/vex/1",` +
		`"author":"fleet operator","timestamp":"2025-01-01T00:00:00Z","version":1,` +
		`"statements":[` + strings.Join(statements, ",") + `]}`
}

// policyDoc builds a policy document around an exceptions document ("" for
// none).
func policyDoc(fields, exceptions string) string {
	doc := `{"version":1,"name":"test","reject":"any"` + fields
	if exceptions != "" {
		doc += `,"exceptions":` + exceptions
	}
	return doc + "}"
}

func TestDefault(t *testing.T) {
	p := Default()
	if p.Version != 1 || p.Reject != RejectAny || p.UnknownSeverity != UnknownBlock ||
		p.ValidFor.Std() != 30*24*time.Hour || p.Name == "" || p.MinSeverity != "" || p.Exceptions != nil {
		t.Errorf("Default() = %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Default does not validate: %v", err)
	}
	if Default() == Default() {
		t.Error("Default returns a shared policy")
	}
	b, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(marshalled Default): %v", err)
	}
	if q.Digest() != Default().Digest() {
		t.Error("Default's digest changes through marshal and Parse")
	}
	// The canonical form is part of every certificate: changing it must be
	// a deliberate act.
	if got := Default().Digest(); got != defaultDigest {
		t.Errorf("Default().Digest() = %s, want %s", got, defaultDigest)
	}
	verdict, out := p.Evaluate("", []vulnref.Finding{{ID: "GO-1", Ecosystem: "Go", Package: "m", Severity: vulnref.SeverityLow}})
	if verdict != VerdictFail || !out[0].Blocking {
		t.Errorf("default policy passes a LOW finding: %s %+v", verdict, out)
	}
}

// defaultDigest is the digest of Default()'s canonical encoding:
// {"version":1,"name":"ztota-default","reject":"any","unknown_severity":"block","valid_for":"720h0m0s"}
var defaultDigest = digestOf(`{"version":1,"name":"ztota-default","reject":"any","unknown_severity":"block","valid_for":"720h0m0s"}`)

func TestParseValid(t *testing.T) {
	p, err := Parse([]byte(`{
		"version": 7,
		"name": "fleet prod",
		"reject": "severity",
		"min_severity": "medium",
		"unknown_severity": "allow",
		"valid_for": "48h30m"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{Version: 7, Name: "fleet prod", Reject: RejectSeverity, MinSeverity: vulnref.SeverityModerate,
		UnknownSeverity: UnknownAllow, ValidFor: Duration(48*time.Hour + 30*time.Minute)}
	if p.Version != want.Version || p.Name != want.Name || p.Reject != want.Reject || p.MinSeverity != want.MinSeverity ||
		p.UnknownSeverity != want.UnknownSeverity || p.ValidFor != want.ValidFor || p.Exceptions != nil {
		t.Errorf("Parse = %+v, want %+v", p, want)
	}

	// Absent optional fields take their defaults; "exceptions": null is absent.
	p, err = Parse([]byte(`{"version":1,"name":"n","reject":"severity","min_severity":"HIGH","exceptions":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.UnknownSeverity != UnknownBlock || p.ValidFor.Std() != DefaultValidFor || p.Exceptions != nil {
		t.Errorf("defaults not applied: %+v", p)
	}

	// Bounds are inclusive.
	for _, d := range []string{"1h", "17520h"} {
		if _, err := Parse([]byte(policyDoc(`,"valid_for":"`+d+`"`, ""))); err != nil {
			t.Errorf("valid_for %s: %v", d, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	stmt := func(s string) string { return policyDoc("", vexDoc(s)) }
	okProduct := `"products":[{"@id":"pkg:golang/golang.org/x/text"}]`
	manyStatements := make([]string, MaxStatements+1)
	for i := range manyStatements {
		manyStatements[i] = `{"vulnerability":{"name":"A"},"products":[{"@id":"x"}],"status":"fixed"}`
	}
	deep := strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1)
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty", ``, "empty document"},
		{"oversize", policyDoc(`,"x":"`+strings.Repeat("a", MaxPolicyBytes)+`"`, ""), "more than"},
		{"invalid utf-8", "{\"version\":1,\"name\":\"\xff\"}", "UTF-8"},
		{"not json", `version: 1`, "invalid character"},
		{"array", `[1]`, "not a JSON object"},
		{"trailing data", policyDoc("", "") + ` {}`, "trailing data"},
		{"truncated", `{"version":1`, "end"},
		{"unknown field", policyDoc(`,"rejct":"any"`, ""), `unknown field "rejct"`},
		{"other letter case", `{"Version":1,"name":"n","reject":"any"}`, `unknown field "Version"`},
		{"duplicate key", `{"version":1,"version":2,"name":"n","reject":"any"}`, `duplicate key "version"`},
		{"duplicate key in exceptions", policyDoc("", `{"author":"a","author":"b"}`), `duplicate key "author"`},
		{"too deep", policyDoc("", deep), "nested deeper"},
		{"missing version", `{"name":"n","reject":"any"}`, "version is required"},
		{"missing name", `{"version":1,"reject":"any"}`, "name is required"},
		{"missing reject", `{"version":1,"name":"n"}`, "reject is required"},
		{"version zero", `{"version":0,"name":"n","reject":"any"}`, "version 0"},
		{"version fraction", `{"version":1.5,"name":"n","reject":"any"}`, "version"},
		{"version string", `{"version":"1","name":"n","reject":"any"}`, "version"},
		{"empty name", `{"version":1,"name":"","reject":"any"}`, "name is empty"},
		{"name control char", `{"version":1,"name":"a\nb","reject":"any"}`, "non-printable"},
		{"name padded", `{"version":1,"name":" a","reject":"any"}`, "leading or trailing"},
		{"name too long", `{"version":1,"name":"` + strings.Repeat("n", MaxNameBytes+1) + `","reject":"any"}`, "more than"},
		{"bad reject", `{"version":1,"name":"n","reject":"some"}`, `reject "some"`},
		{"bad severity", `{"version":1,"name":"n","reject":"severity","min_severity":"SEVERE"}`, `min_severity "SEVERE"`},
		{"missing severity", `{"version":1,"name":"n","reject":"severity"}`, `min_severity ""`},
		{"unknown as minimum", `{"version":1,"name":"n","reject":"severity","min_severity":"UNKNOWN"}`, "min_severity"},
		{"severity with any", policyDoc(`,"min_severity":"HIGH"`, ""), "only meaningful"},
		{"bad unknown_severity", policyDoc(`,"unknown_severity":"maybe"`, ""), "unknown_severity"},
		{"bad duration", policyDoc(`,"valid_for":"forever"`, ""), `duration "forever"`},
		{"bare number duration", policyDoc(`,"valid_for":720`, ""), "want a string"},
		{"too short", policyDoc(`,"valid_for":"59m"`, ""), "valid_for 59m0s"},
		{"too long", policyDoc(`,"valid_for":"17521h"`, ""), "valid_for"},
		{"negative", policyDoc(`,"valid_for":"-720h"`, ""), "valid_for"},
		{"exceptions not object", policyDoc("", `[1]`), "not an OpenVEX document"},
		{"vex wrong context", policyDoc("", strings.Replace(vexDoc(), "v0.2.0", "v0.0.1", 1)), "@context"},
		{"vex no author", policyDoc("", strings.Replace(vexDoc(), `"author":"fleet operator",`, "", 1)), "author is required"},
		{"vex no id", policyDoc("", strings.Replace(vexDoc(), `"@id":"https://ztota.example/vex/1",`, "", 1)), "@id is required"},
		{"vex no timestamp", policyDoc("", strings.Replace(vexDoc(), `"timestamp":"2025-01-01T00:00:00Z",`, "", 1)), "timestamp is required"},
		{"vex bad timestamp", policyDoc("", strings.Replace(vexDoc(), `2025-01-01T00:00:00Z`, "yesterday", 1)), "not an OpenVEX document"},
		{"vex version zero", policyDoc("", strings.Replace(vexDoc(), `"version":1`, `"version":0`, 1)), "version 0"},
		{"vex unknown field", stmt(`{"vulnerability":{"name":"GO-1"},` + okProduct + `,"status":"not_affected","justificaton":"component_not_present"}`), `unknown field "justificaton"`},
		{"vex bad status", stmt(`{"vulnerability":{"name":"GO-1"},` + okProduct + `,"status":"fine"}`), `status "fine"`},
		{"vex bad justification", stmt(`{"vulnerability":{"name":"GO-1"},` + okProduct + `,"status":"not_affected","justification":"trust_me"}`), `justification "trust_me"`},
		{"vex no vulnerability", stmt(`{` + okProduct + `,"status":"fixed"}`), "vulnerability name is required"},
		{"vex empty alias", stmt(`{"vulnerability":{"name":"GO-1","aliases":[""]},` + okProduct + `,"status":"fixed"}`), "empty alias"},
		{"vex no products", stmt(`{"vulnerability":{"name":"GO-1"},"status":"fixed"}`), "no products"},
		{"vex product names nothing", stmt(`{"vulnerability":{"name":"GO-1"},"products":[{"supplier":"x"}],"status":"fixed"}`), "names nothing"},
		{"vex bad hash", stmt(`{"vulnerability":{"name":"GO-1"},"products":[{"hashes":{"sha-256":"abc"}}],"status":"fixed"}`), "64 hex"},
		{"vex bad digest id", stmt(`{"vulnerability":{"name":"GO-1"},"products":[{"@id":"sha256:xyz"}],"status":"fixed"}`), "not a sha256 digest"},
		{"vex bad purl", stmt(`{"vulnerability":{"name":"GO-1"},"products":[{"identifiers":{"purl":"pkg:"}}],"status":"fixed"}`), "purl identifier"},
		{"vex bad subcomponent", stmt(`{"vulnerability":{"name":"GO-1"},"products":[{"@id":"x","subcomponents":[{}]}],"status":"fixed"}`), "subcomponent 0"},
		{"vex too many statements", policyDoc("", vexDoc(manyStatements...)), "more than"},
	} {
		p, err := Parse([]byte(tc.doc))
		if err == nil {
			t.Errorf("%s: Parse accepted it: %+v", tc.name, p)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
		if !strings.HasPrefix(err.Error(), "certpolicy: ") {
			t.Errorf("%s: error %q lacks the package context", tc.name, err)
		}
	}
}

func TestVEXWithoutJustificationDoesNotExempt(t *testing.T) {
	doc := policyDoc("", vexDoc(
		`{"vulnerability":{"name":"GO-2021-0113"},"products":[{"@id":"pkg:golang/golang.org/x/text"}],"status":"not_affected"}`,
		`{"vulnerability":{"name":"GO-2022-1059"},"products":[{"@id":"pkg:golang/golang.org/x/text"}],"status":"not_affected","impact_statement":"tags come from the build, never from users"}`,
	))
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("a not_affected statement without justification is kept, not rejected: %v", err)
	}
	verdict, out := p.Evaluate("", []vulnref.Finding{
		{ID: "GO-2021-0113", Ecosystem: "Go", Package: "golang.org/x/text", Version: "0.3.5", Severity: vulnref.SeverityUnknown},
		{ID: "GO-2022-1059", Ecosystem: "Go", Package: "golang.org/x/text", Version: "0.3.5", Severity: vulnref.SeverityUnknown},
	})
	if verdict != VerdictFail {
		t.Errorf("verdict %s, want fail", verdict)
	}
	if f := out[0]; f.ID != "GO-2021-0113" || f.Exempted || !f.Blocking {
		t.Errorf("statement without justification exempted: %+v", f)
	}
	if f := out[1]; f.ID != "GO-2022-1059" || !f.Exempted || f.Blocking || f.Justification != "tags come from the build, never from users" {
		t.Errorf("impact statement did not exempt: %+v", f)
	}
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestDigestStability(t *testing.T) {
	exc := vexDoc(`{"vulnerability":{"name":"GO-2021-0113","aliases":["CVE-2021-38561"]},` +
		`"products":[{"@id":"pkg:golang/golang.org/x/text"}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}`)
	a := `{"version":2,"name":"prod","reject":"severity","min_severity":"HIGH","unknown_severity":"block","valid_for":"720h","exceptions":` + exc + `}`
	// Same policy: other key order, whitespace, spellings and defaults.
	excReordered := `{ "version": 1, "timestamp": "2025-01-01T00:00:00Z", "statements": [ {
		"status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
		"products": [ { "@id": "pkg:golang/golang.org/x/text" } ],
		"vulnerability": { "aliases": [ "CVE-2021-38561" ], "name": "GO-2021-0113" } } ],
		"author": "fleet operator", "@id": "https://ztota.example/vex/1", "@context": "https://openvex.dev/ns/v0.2.0" }`
	b := "{\n  \"exceptions\": " + excReordered + ",\n  \"valid_for\": \"720h0m0s\",\n  \"min_severity\": \"high\",\n  \"reject\": \"severity\",\n  \"name\": \"prod\",\n  \"version\": 2\n}\n"
	pa, err := Parse([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Parse([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	d := pa.Digest()
	if !digestRE.MatchString(d) {
		t.Fatalf("digest %q is not sha256:<hex>", d)
	}
	if pb.Digest() != d {
		t.Errorf("equivalent documents digest differently:\n%s\n%s", d, pb.Digest())
	}
	if pa.Digest() != d {
		t.Error("digest changes between calls")
	}
	// Re-marshal and re-parse.
	m, err := json.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := Parse(m)
	if err != nil {
		t.Fatalf("Parse(json.Marshal(policy)): %v", err)
	}
	if pm.Digest() != d {
		t.Error("digest changes through json.Marshal and Parse")
	}
	// The canonical form parses back to the same digest and is itself
	// stable.
	c, err := pa.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := Parse(c)
	if err != nil {
		t.Fatalf("Parse(Canonical()): %v", err)
	}
	if c2, _ := pc.Canonical(); string(c2) != string(c) || pc.Digest() != d {
		t.Errorf("canonical form not stable:\n%s\n%s", c, c2)
	}
	if digestOf(string(c)) != d {
		t.Error("Digest is not the SHA-256 of Canonical")
	}

	// Any change of content changes the digest.
	for name, doc := range map[string]string{
		"version":       strings.Replace(a, `"version":2`, `"version":3`, 1),
		"name":          strings.Replace(a, `"prod"`, `"prod2"`, 1),
		"severity":      strings.Replace(a, `"HIGH"`, `"CRITICAL"`, 1),
		"unknown":       strings.Replace(a, `"block"`, `"allow"`, 1),
		"validity":      strings.Replace(a, `"720h"`, `"721h"`, 1),
		"statement":     strings.Replace(a, `vulnerable_code_not_in_execute_path`, `component_not_present`, 1),
		"alias":         strings.Replace(a, `CVE-2021-38561`, `CVE-2021-38562`, 1),
		"extra alias":   strings.Replace(a, `"aliases":["CVE-2021-38561"]`, `"aliases":["CVE-2021-38561","X-1"]`, 1),
		"no exceptions": `{"version":2,"name":"prod","reject":"severity","min_severity":"HIGH","unknown_severity":"block","valid_for":"720h"}`,
	} {
		p, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Digest() == d {
			t.Errorf("changing the %s leaves the digest unchanged", name)
		}
	}

	// A hand-made policy whose exceptions are not JSON still gets a digest,
	// distinct from the same policy without them.
	bad := *Default()
	bad.Exceptions = json.RawMessage(`{not json`)
	if _, err := bad.Canonical(); err == nil {
		t.Error("Canonical of non-JSON exceptions: no error")
	}
	if bd := bad.Digest(); !digestRE.MatchString(bd) || bd == Default().Digest() {
		t.Errorf("digest of a policy with broken exceptions: %q", bd)
	}
}

func TestCanonicalNumbers(t *testing.T) {
	for in, want := range map[string]string{
		`{"b":1.0,"a":[1e2,-0.5,3]}`:     `{"a":[100,-0.5,3],"b":1}`,
		`{"x":"<&>","n":12345678901234}`: `{"n":12345678901234,"x":"<&>"}`,
	} {
		got, err := canonicalJSON(json.RawMessage(in))
		if err != nil || string(got) != want {
			t.Errorf("canonicalJSON(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`"1h30m"`), &d); err != nil || d.Std() != 90*time.Minute {
		t.Errorf("unmarshal 1h30m: %v %v", d, err)
	}
	b, err := json.Marshal(Duration(90 * time.Minute))
	if err != nil || string(b) != `"1h30m0s"` {
		t.Errorf("marshal: %s %v", b, err)
	}
	for _, bad := range []string{`90`, `"90"`, `null`, `"1d"`, `{}`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil && bad != `null` {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives its canonical form with the same digest.
func FuzzParse(f *testing.F) {
	f.Add([]byte(policyDoc("", "")))
	f.Add([]byte(policyDoc(`,"valid_for":"24h"`, vexDoc(`{"vulnerability":{"name":"A","aliases":["B"]},"products":[{"@id":"sha256:`+strings.Repeat("ab", 32)+`","subcomponents":[{"@id":"pkg:golang/x/y"}]}],"status":"not_affected","justification":"component_not_present"}`))))
	f.Add([]byte(`{"version":1,"name":"n","reject":"severity","min_severity":"MEDIUM","unknown_severity":"allow"}`))
	f.Add([]byte(`{"version":1,"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		c, err := p.Canonical()
		if err != nil {
			t.Fatalf("accepted policy has no canonical form: %v", err)
		}
		q, err := Parse(c)
		if err != nil {
			t.Fatalf("canonical form %s rejected: %v", c, err)
		}
		if q.Digest() != p.Digest() {
			t.Fatalf("digest changed through canonical form %s", c)
		}
		p.Evaluate(strings.Repeat("0", 64), []vulnref.Finding{{ID: "A", Aliases: []string{"B"}, Ecosystem: "Go", Package: "x/y", Version: "1.0.0"}})
	})
}

func digestOf(s string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s)))
}
