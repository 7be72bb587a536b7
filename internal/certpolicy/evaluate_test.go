package certpolicy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

var (
	artifact  = strings.Repeat("ab", 32) // the artifact under evaluation
	otherArtf = strings.Repeat("cd", 32)
)

// findings of one artifact: two Go advisories without severities and three
// Debian ones with.
func testFindings() []vulnref.Finding {
	return []vulnref.Finding{
		{ID: "GO-2022-1059", Aliases: []string{"CVE-2022-32149", "GHSA-69ch-w2m2-3vjp"}, Ecosystem: "Go",
			Package: "golang.org/x/text", Version: "0.3.5", Fixed: "0.3.8", Severity: vulnref.SeverityUnknown},
		{ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"}, Ecosystem: "Go",
			Package: "golang.org/x/text", Version: "0.3.5", Fixed: "0.3.7", Severity: vulnref.SeverityUnknown},
		{ID: "CVE-2023-0001", Ecosystem: "Debian:12", Package: "openssl", Version: "3.0.1-1", Severity: vulnref.SeverityHigh},
		{ID: "CVE-2023-0002", Ecosystem: "Debian:12", Package: "zlib", Version: "1.2.13", Severity: vulnref.SeverityLow},
		{ID: "CVE-2023-0003", Ecosystem: "Debian:12", Package: "curl", Version: "7.88.1", Severity: "MEDIUM"},
	}
}

// stmt builds a VEX statement.
func stmt(vuln, products, status, extra string) string {
	return fmt.Sprintf(`{"vulnerability":%s,"products":[%s],"status":%q%s}`, vuln, products, status, extra)
}

const justified = `,"justification":"vulnerable_code_not_in_execute_path"`

func TestEvaluate(t *testing.T) {
	artID := `{"@id":"sha256:` + artifact + `"}`
	textPURL := `{"@id":"pkg:golang/golang.org/x/text"}`
	name := func(id string) string { return `{"name":"` + id + `"}` }
	at := func(ts string) string { return `,"timestamp":"` + ts + `"` }

	type want struct{ blocking, exempted bool }
	B, E, N := want{blocking: true}, want{exempted: true}, want{} // blocks, exempted, neither
	for _, tc := range []struct {
		name     string
		fields   string // policy fields after reject (reject given here when not "any")
		stmts    []string
		artifact string
		verdict  string
		want     map[string]want // by finding id; every finding must be listed
	}{
		{
			name: "any: everything blocks", verdict: VerdictFail, artifact: artifact,
			want: map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "severity HIGH, unknown blocks", fields: `,"reject":"severity","min_severity":"HIGH"`, verdict: VerdictFail,
			want: map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": N, "CVE-2023-0003": N},
		},
		{
			name: "severity HIGH, unknown allowed", fields: `,"reject":"severity","min_severity":"HIGH","unknown_severity":"allow"`, verdict: VerdictFail,
			want: map[string]want{"GO-2022-1059": N, "GO-2021-0113": N, "CVE-2023-0001": B, "CVE-2023-0002": N, "CVE-2023-0003": N},
		},
		{
			name: "severity MODERATE reads MEDIUM", fields: `,"reject":"severity","min_severity":"MODERATE","unknown_severity":"allow"`, verdict: VerdictFail,
			want: map[string]want{"GO-2022-1059": N, "GO-2021-0113": N, "CVE-2023-0001": B, "CVE-2023-0002": N, "CVE-2023-0003": B},
		},
		{
			name: "severity CRITICAL, unknown allowed: pass", fields: `,"reject":"severity","min_severity":"CRITICAL","unknown_severity":"allow"`, verdict: VerdictPass,
			want: map[string]want{"GO-2022-1059": N, "GO-2021-0113": N, "CVE-2023-0001": N, "CVE-2023-0002": N, "CVE-2023-0003": N},
		},
		{
			name: "exempt by id for this artifact", artifact: artifact, verdict: VerdictFail,
			stmts: []string{stmt(name("GO-2021-0113"), artID, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": B, "GO-2021-0113": E, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "exempt by the finding's alias", artifact: "sha256:" + artifact, verdict: VerdictFail,
			stmts: []string{stmt(name("CVE-2022-32149"), artID, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": E, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "exempt by the statement's alias", artifact: artifact, verdict: VerdictFail,
			stmts: []string{stmt(`{"name":"CVE-9999-0000","aliases":["GHSA-ppp9-7jff-5vj2"]}`, artID, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": B, "GO-2021-0113": E, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "exempt by product hash, upper-case hex", artifact: strings.ToUpper(artifact), verdict: VerdictFail,
			stmts: []string{stmt(name("CVE-2023-0001"), `{"hashes":{"sha-256":"`+strings.ToUpper(artifact)+`"}}`, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": E, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "exempt by identifier naming the artifact", artifact: artifact, verdict: VerdictFail,
			stmts: []string{stmt(name("CVE-2023-0002"), `{"identifiers":{"cpe23":"x"},"@id":"urn:x","hashes":{"sha-512":"00"}},{"identifiers":{"digest":"sha256:`+artifact+`"}}`, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": E, "CVE-2023-0003": B},
		},
		{
			name: "exempt by unversioned purl, any artifact", artifact: otherArtf, verdict: VerdictFail,
			stmts: []string{stmt(name("GO-2021-0113"), textPURL, "not_affected", justified), stmt(name("GO-2022-1059"), textPURL, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": E, "GO-2021-0113": E, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "exempt by versioned purl identifier, with or without v", verdict: VerdictFail,
			stmts: []string{
				stmt(name("GO-2021-0113"), `{"identifiers":{"purl":"pkg:golang/golang.org/x/text@v0.3.5"}}`, "not_affected", justified),
				stmt(name("GO-2022-1059"), `{"@id":"pkg:golang/golang.org/x/text@0.3.5"}`, "not_affected", justified),
			},
			want: map[string]want{"GO-2022-1059": E, "GO-2021-0113": E, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "Debian purl", verdict: VerdictFail,
			stmts: []string{stmt(name("CVE-2023-0001"), `{"@id":"pkg:deb/debian/openssl"}`, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": E, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "non-matching products", artifact: artifact, verdict: VerdictFail,
			stmts: []string{
				stmt(name("GO-2021-0113"), `{"@id":"sha256:`+otherArtf+`"}`, "not_affected", justified),
				stmt(name("GO-2021-0113"), `{"hashes":{"sha-256":"`+otherArtf+`"}}`, "not_affected", justified),
				stmt(name("GO-2021-0113"), `{"@id":"pkg:golang/golang.org/x/text@v0.3.6"}`, "not_affected", justified),
				stmt(name("GO-2021-0113"), `{"@id":"pkg:golang/golang.org/x/net"}`, "not_affected", justified),
				stmt(name("GO-2021-0113"), `{"@id":"pkg:deb/debian/golang.org/x/text"}`, "not_affected", justified),
				stmt(name("GO-2021-0113"), `{"@id":"`+artifact+`"}`, "not_affected", justified), // bare hex is not "sha256:<hex>"
				stmt(name("GO-2099-0001"), artID, "not_affected", justified),
			},
			want: map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "artifact hash product without a valid artifact digest", artifact: "not-a-digest", verdict: VerdictFail,
			stmts: []string{stmt(name("GO-2021-0113"), artID, "not_affected", justified)},
			want:  map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "subcomponents narrow the artifact product", artifact: artifact, verdict: VerdictFail,
			stmts: []string{
				stmt(name("GO-2021-0113"), `{"@id":"sha256:`+artifact+`","subcomponents":[{"@id":"pkg:golang/golang.org/x/net"}]}`, "not_affected", justified),
				stmt(name("GO-2022-1059"), `{"@id":"sha256:`+artifact+`","subcomponents":[{"identifiers":{"purl":"pkg:golang/golang.org/x/text"}}]}`, "not_affected", justified),
			},
			want: map[string]want{"GO-2022-1059": E, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "other statuses never exempt", artifact: artifact, verdict: VerdictFail,
			stmts: []string{
				stmt(name("GO-2021-0113"), artID, "fixed", ""),
				stmt(name("GO-2022-1059"), artID, "under_investigation", ""),
				stmt(name("CVE-2023-0001"), artID, "affected", `,"action_statement":"upgrade"`),
				stmt(name("CVE-2023-0002"), artID, "affected", ""),
			},
			want: map[string]want{"GO-2022-1059": B, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "a later affected statement supersedes not_affected", artifact: artifact, verdict: VerdictFail,
			stmts: []string{
				stmt(name("GO-2021-0113"), textPURL, "not_affected", justified+at("2025-02-01T00:00:00Z")),
				stmt(name("GO-2021-0113"), artID, "affected", at("2025-03-01T00:00:00Z")),
				// Document order does not matter, time does.
				stmt(name("GO-2022-1059"), artID, "affected", at("2025-03-01T00:00:00Z")),
				stmt(name("GO-2022-1059"), textPURL, "not_affected", justified+at("2025-04-01T00:00:00Z")),
			},
			want: map[string]want{"GO-2022-1059": E, "GO-2021-0113": B, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "equal times: the later statement in the document wins; no timestamp means the document's", artifact: artifact, verdict: VerdictFail,
			stmts: []string{
				stmt(name("GO-2021-0113"), artID, "under_investigation", ""),
				stmt(name("GO-2021-0113"), artID, "not_affected", justified+at("2025-01-01T00:00:00Z")),
				stmt(name("GO-2022-1059"), artID, "not_affected", justified),
				stmt(name("GO-2022-1059"), artID, "under_investigation", at("2025-01-01T00:00:00Z")),
			},
			want: map[string]want{"GO-2022-1059": B, "GO-2021-0113": E, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "a future timestamp still applies", artifact: artifact, verdict: VerdictFail,
			stmts: []string{stmt(name("GO-2021-0113"), artID, "not_affected", justified+at("2999-01-01T00:00:00Z"))},
			want:  map[string]want{"GO-2022-1059": B, "GO-2021-0113": E, "CVE-2023-0001": B, "CVE-2023-0002": B, "CVE-2023-0003": B},
		},
		{
			name: "everything exempted or below threshold: pass", artifact: artifact, verdict: VerdictPass,
			fields: `,"reject":"severity","min_severity":"HIGH"`,
			stmts: []string{
				stmt(`{"name":"GO-2021-0113","aliases":["GO-2022-1059","CVE-2023-0001"]}`, artID+`,`+textPURL, "not_affected", justified),
			},
			want: map[string]want{"GO-2022-1059": E, "GO-2021-0113": E, "CVE-2023-0001": E, "CVE-2023-0002": N, "CVE-2023-0003": N},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := tc.fields
			doc := `{"version":1,"name":"t"`
			if !strings.Contains(fields, `"reject"`) {
				doc += `,"reject":"any"`
			}
			doc += fields
			if len(tc.stmts) > 0 {
				doc += `,"exceptions":` + vexDoc(tc.stmts...)
			}
			p, err := Parse([]byte(doc + "}"))
			if err != nil {
				t.Fatal(err)
			}
			in := testFindings()
			verdict, out := p.Evaluate(tc.artifact, in)
			if verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", verdict, tc.verdict)
			}
			if len(out) != len(tc.want) {
				t.Fatalf("%d findings out, want %d", len(out), len(tc.want))
			}
			for _, f := range out {
				w, ok := tc.want[f.ID]
				if !ok {
					t.Fatalf("unexpected finding %s", f.ID)
				}
				if f.Blocking != w.blocking || f.Exempted != w.exempted {
					t.Errorf("%s: blocking %v exempted %v, want blocking %v exempted %v", f.ID, f.Blocking, f.Exempted, w.blocking, w.exempted)
				}
				if f.Exempted && f.Justification != "vulnerable_code_not_in_execute_path" {
					t.Errorf("%s: justification %q", f.ID, f.Justification)
				}
				if !f.Exempted && f.Justification != "" {
					t.Errorf("%s: justification %q on a finding not exempted", f.ID, f.Justification)
				}
			}
			if !reflect.DeepEqual(in, testFindings()) {
				t.Error("Evaluate modified its input")
			}
		})
	}
}

func TestEvaluateOrderAndReset(t *testing.T) {
	p := Default()
	fs := testFindings()
	// Stale evaluation fields on input are ignored.
	fs[0].Blocking, fs[1].Exempted, fs[1].Justification = false, true, "stale"
	rev := make([]vulnref.Finding, len(fs))
	for i := range fs {
		rev[len(fs)-1-i] = fs[i]
	}
	v1, out1 := p.Evaluate(artifact, fs)
	v2, out2 := p.Evaluate(artifact, rev)
	if v1 != v2 || !reflect.DeepEqual(out1, out2) {
		t.Errorf("result depends on input order:\n%+v\n%+v", out1, out2)
	}
	var keys []string
	for _, f := range out1 {
		keys = append(keys, f.Ecosystem+"|"+f.Package+"|"+f.ID)
		if !f.Blocking || f.Exempted || f.Justification != "" {
			t.Errorf("%s: stale fields survived: %+v", f.ID, f)
		}
	}
	want := []string{
		"Debian:12|curl|CVE-2023-0003", "Debian:12|openssl|CVE-2023-0001", "Debian:12|zlib|CVE-2023-0002",
		"Go|golang.org/x/text|GO-2021-0113", "Go|golang.org/x/text|GO-2022-1059",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("order %v, want %v", keys, want)
	}
	v, out := p.Evaluate(artifact, nil)
	if v != VerdictPass || out == nil || len(out) != 0 {
		t.Errorf("no findings: %s %v", v, out)
	}
}

func TestEvaluateUnvalidatedPolicyFailsSafe(t *testing.T) {
	f := []vulnref.Finding{{ID: "GO-2021-0113", Ecosystem: "Go", Package: "golang.org/x/text", Version: "0.3.5", Severity: vulnref.SeverityLow}}
	for _, p := range []*Policy{
		{},
		{Reject: "bogus"},
		{Reject: RejectSeverity, MinSeverity: "SEVERE"},
		{Reject: RejectAny, Exceptions: json.RawMessage(`{broken`)},
	} {
		if v, out := p.Evaluate(artifact, f); v != VerdictFail || !out[0].Blocking || out[0].Exempted {
			t.Errorf("policy %+v: %s %+v, want a blocking finding", p, v, out)
		}
	}
	// A hand-built policy with valid exceptions that skipped Validate still
	// applies them.
	p := Default()
	p.Exceptions = json.RawMessage(vexDoc(stmt(`{"name":"GO-2021-0113"}`, `{"@id":"pkg:golang/golang.org/x/text"}`, "not_affected", justified)))
	if v, out := p.Evaluate(artifact, f); v != VerdictPass || !out[0].Exempted {
		t.Errorf("unvalidated exceptions ignored: %s %+v", v, out)
	}
}

func TestFindingPURLs(t *testing.T) {
	got := findingPURLs("Go", "github.com/BurntSushi/toml", "1.6.0")
	want := []string{
		"pkg:golang/github.com/BurntSushi/toml@v1.6.0", "pkg:golang/github.com/BurntSushi/toml@1.6.0",
		"pkg:golang/github.com/burntsushi/toml@v1.6.0", "pkg:golang/github.com/burntsushi/toml@1.6.0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Go purls %v, want %v", got, want)
	}
	if got := findingPURLs("Debian:12", "openssl", "3.0.1-1"); !reflect.DeepEqual(got, []string{"pkg:deb/debian/openssl@3.0.1-1"}) {
		t.Errorf("Debian purls %v", got)
	}
	if got := findingPURLs("npm", "left-pad", "1.0.0"); got != nil {
		t.Errorf("npm purls %v, want none", got)
	}
	if got := findingPURLs("Go", "stdlib", "1.22.3"); !reflect.DeepEqual(got, []string{"pkg:golang/stdlib@v1.22.3", "pkg:golang/stdlib@1.22.3"}) {
		t.Errorf("stdlib purls %v", got)
	}
}
