package certpolicy

import (
	"slices"
	"sort"

	"github.com/ztota/ztota/internal/vulnref"
)

// Verdicts of Evaluate.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
)

// severityRank orders the known severities; unknown ones are absent.
var severityRank = map[string]int{
	vulnref.SeverityLow:      1,
	vulnref.SeverityModerate: 2,
	vulnref.SeverityHigh:     3,
	vulnref.SeverityCritical: 4,
}

// Evaluate applies the policy to the findings of one artifact, named by
// its SHA-256 ("<hex>" or "sha256:<hex>"; anything else matches no
// artifact-specific VEX product). It returns a copy of the findings with
// Exempted, Justification and Blocking set, sorted by ecosystem, package,
// version and id (then severity and fixed version), and VerdictFail when
// any of them blocks, else VerdictPass.
//
// An exempted finding never blocks; a module-only finding (Level
// vulnref.LevelModuleOnly) blocks only as ModuleOnly says. its Justification is the deciding
// statement's justification, or its impact statement when it has no
// justification. Otherwise a finding blocks under RejectAny; under
// RejectSeverity it blocks when its severity is at or above MinSeverity,
// and a finding whose severity is UNKNOWN, empty or unrecognized blocks
// unless UnknownSeverity is UnknownAllow. A policy whose fields are
// invalid (one not checked by Validate) fails safe: every finding that is
// not exempted blocks, and exceptions that do not compile exempt nothing.
func (p *Policy) Evaluate(artifactSHA256 string, fs []vulnref.Finding) (verdict string, out []vulnref.Finding) {
	exc := p.exc
	if exc == nil && !isNull(p.Exceptions) {
		exc, _ = compileExceptions(p.Exceptions) // nil on error: no exemptions
	}
	artifact := normalizeArtifact(artifactSHA256)
	out = make([]vulnref.Finding, len(fs))
	copy(out, fs)
	verdict = VerdictPass
	for i := range out {
		f := &out[i]
		f.Blocking, f.Exempted, f.Justification = false, false, ""
		ids := append([]string{f.ID}, f.Aliases...)
		if s := exc.effective(artifact, ids, findingPURLs(f.Ecosystem, f.Package, f.Version)); s != nil && s.exempts {
			f.Exempted = true
			f.Justification = string(s.Justification)
			if f.Justification == "" {
				f.Justification = s.ImpactStatement
			}
			continue
		}
		if f.Level == vulnref.LevelModuleOnly {
			f.Blocking = p.moduleOnlyBlocks(f)
		} else {
			f.Blocking = p.blocks(f.Severity)
		}
		if f.Blocking {
			verdict = VerdictFail
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		switch {
		case a.Ecosystem != b.Ecosystem:
			return a.Ecosystem < b.Ecosystem
		case a.Package != b.Package:
			return a.Package < b.Package
		case a.Version != b.Version:
			return a.Version < b.Version
		case a.ID != b.ID:
			return a.ID < b.ID
		case a.Severity != b.Severity:
			return a.Severity < b.Severity
		default:
			return a.Fixed < b.Fixed
		}
	})
	return verdict, out
}

// blocks says whether a finding of the given severity that no statement
// exempts makes certification fail.
func (p *Policy) blocks(severity string) bool {
	if p.Reject != RejectSeverity {
		return true
	}
	ms, _ := normalizeSeverity(p.MinSeverity)
	min, ok := severityRank[ms]
	if !ok {
		return true
	}
	s, _ := normalizeSeverity(severity)
	rank, ok := severityRank[s]
	if !ok {
		return p.UnknownSeverity != UnknownAllow
	}
	return rank >= min
}

// moduleOnlyBlocks says whether a module-only finding that no statement
// exempts makes certification fail.
func (p *Policy) moduleOnlyBlocks(f *vulnref.Finding) bool {
	m := p.ModuleOnly
	if m == nil {
		return false
	}
	if m.All && p.blocks(f.Severity) {
		return true
	}
	for _, id := range m.Advisories {
		if id == f.ID || slices.Contains(f.Aliases, id) {
			return true
		}
	}
	if m.MinSeverity == "" {
		return false
	}
	ms, _ := normalizeSeverity(m.MinSeverity)
	min, ok := severityRank[ms]
	if !ok {
		return true // an invalid rule fails safe
	}
	s, _ := normalizeSeverity(f.Severity)
	rank, ok := severityRank[s]
	return ok && rank >= min
}
