// Package certpolicy is the certification service's versioned policy
// document: which vulnerability findings make an artifact fail
// certification, how long a certificate stays valid, and which findings an
// operator has exempted with an OpenVEX document.
//
// A policy is JSON:
//
//	{
//	  "version": 3,
//	  "name": "fleet-prod",
//	  "reject": "severity",            // "any" | "severity"
//	  "min_severity": "HIGH",          // only with "severity"
//	  "unknown_severity": "block",     // "block" (default) | "allow"
//	  "valid_for": "720h",             // Go duration, 1h..17520h (default 720h)
//	  "module_only": {                 // optional; default: module-only findings never block
//	    "all": false,                  // every module-only finding blocks as a present one would
//	    "min_severity": "CRITICAL",    // module-only findings at or above block
//	    "advisories": ["GO-2026-5932"] // module-only findings of these ids (or aliases) block
//	  },
//	  "exceptions": { ...OpenVEX 0.2.0 document... }
//	}
//
// # Levels
//
// A Go finding is "present" when a vulnerable symbol of the advisory is
// linked into the binary (or the verifier cannot tell), "module-only" when
// the module version is affected but none of its vulnerable symbols is in
// the binary. Present findings (and findings without a level) block as
// reject, min_severity and unknown_severity say; module-only findings are
// recorded but block only as module_only says. VEX exemptions apply to
// both levels alike.
//
// [Parse] is strict: unknown or duplicate fields, trailing data, values out
// of range and malformed exceptions are errors, and the document is bounded
// in size ([MaxPolicyBytes]) and in the number of VEX statements
// ([MaxStatements]). [Policy.Digest] names a policy by a hash of its
// canonical JSON, so certificates can record exactly which policy they were
// issued under. [Policy.Evaluate] applies a policy to one artifact's
// findings; it reads no clock, so the same policy, artifact and findings
// always give the same verdict.
//
// # Exemptions
//
// A VEX statement exempts a finding when all of these hold:
//
//   - its vulnerability's name or one of its aliases (or its @id) equals
//     the finding's id or one of the finding's aliases;
//   - one of its products matches: either the product names the artifact —
//     its @id or an identifier is "sha256:<hex>" of the artifact, or its
//     hashes hold {"sha-256": "<hex>"} — and, if the product lists
//     subcomponents, one of them matches the finding's package URL; or the
//     product is itself the finding's package URL (for Go
//     "pkg:golang/<module>", for Debian "pkg:deb/debian/<package>"), with or
//     without a version, matched with go-vex's purl rules (a product purl
//     without a version matches every version; one with a version matches
//     that version only, written with or without the Go "v"). A
//     package-URL product exempts the package in every artifact;
//   - among all statements that match the finding in this way, it is the
//     latest (by its timestamp, else the document's; on a tie the one later
//     in the document) — OpenVEX's rule that a newer statement supersedes
//     an older one — and
//   - its status is not_affected and it carries a justification or an
//     impact statement.
//
// Statements with other statuses (affected, fixed, under_investigation),
// and not_affected statements with neither a justification nor an impact
// statement, are accepted and take part in choosing the latest statement,
// but never exempt anything. A statement timestamp is only used to order
// statements and is never compared with the current time: an exemption
// applies from when the operator puts the policy in force, whatever date it
// carries, which keeps evaluation reproducible.
package certpolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/vulnref"
)

// Values of Policy.Reject.
const (
	// RejectAny fails certification on any known, non-exempted finding.
	RejectAny = "any"
	// RejectSeverity fails certification only on findings at or above
	// MinSeverity (and, by UnknownSeverity, on findings of unknown
	// severity).
	RejectSeverity = "severity"
)

// Values of Policy.UnknownSeverity.
const (
	UnknownBlock = "block"
	UnknownAllow = "allow"
)

// Limits on a policy document.
const (
	// MaxPolicyBytes bounds the whole document, exceptions included.
	MaxPolicyBytes = 1 << 20
	// MaxNameBytes bounds the policy name.
	MaxNameBytes = 128
	// MaxVersion bounds the document version.
	MaxVersion = 1<<31 - 1
	// MinValidFor and MaxValidFor bound the certificate validity.
	MinValidFor = time.Hour
	MaxValidFor = 2 * 365 * 24 * time.Hour
	// DefaultValidFor is the validity when the document gives none.
	DefaultValidFor = 30 * 24 * time.Hour
	// MaxJSONDepth bounds the nesting of the document.
	MaxJSONDepth = 32
	// MaxStatements bounds the statements of the exceptions document.
	MaxStatements = 10000
	// MaxProducts bounds the products of one statement, and the
	// subcomponents of one product.
	MaxProducts = 1000
	// MaxAliases bounds the aliases of one statement's vulnerability.
	MaxAliases = 100
)

// Policy is one version of a certification policy. Build one with Default
// or Parse; a Policy built or changed by hand should be checked with
// Validate before use (Evaluate keeps using the exceptions compiled by the
// last Validate).
type Policy struct {
	// Version is the document's own version, at least 1.
	Version int `json:"version"`
	// Name names the policy.
	Name string `json:"name"`
	// Reject is RejectAny or RejectSeverity.
	Reject string `json:"reject"`
	// MinSeverity is the least severity that fails certification under
	// RejectSeverity: one of the vulnref severities except UNKNOWN
	// ("MEDIUM" is accepted for MODERATE). Empty under RejectAny.
	MinSeverity string `json:"min_severity,omitempty"`
	// UnknownSeverity says whether findings whose severity is unknown
	// block certification under RejectSeverity: UnknownBlock (the
	// default; the Go vulnerability database gives no severities) or
	// UnknownAllow.
	UnknownSeverity string `json:"unknown_severity"`
	// ValidFor is how long a certificate issued under the policy is valid.
	ValidFor Duration `json:"valid_for"`
	// ModuleOnly says which module-only findings block; nil: none.
	ModuleOnly *ModuleOnlyRule `json:"module_only,omitempty"`
	// Exceptions is an optional OpenVEX document whose not_affected
	// statements exempt findings (see the package documentation).
	Exceptions json.RawMessage `json:"exceptions,omitempty"`

	// exc is the compiled Exceptions, set by Validate.
	exc *exceptions
}

// ModuleOnlyRule says which module-only findings block certification.
type ModuleOnlyRule struct {
	// All makes every module-only finding block as a present one would.
	All bool `json:"all,omitempty"`
	// MinSeverity makes module-only findings at or above it block (one of
	// the vulnref severities except UNKNOWN; "" for none). Findings of
	// unknown severity do not block by it.
	MinSeverity string `json:"min_severity,omitempty"`
	// Advisories lists advisory ids or aliases whose module-only findings
	// block, at most MaxModuleOnlyAdvisories of at most MaxAdvisoryIDBytes.
	Advisories []string `json:"advisories,omitempty"`
}

// Bounds on ModuleOnlyRule.Advisories.
const (
	MaxModuleOnlyAdvisories = 10000
	MaxAdvisoryIDBytes      = 128
)

// Default returns the default policy: any known, non-exempted finding
// fails certification, and certificates are valid for 30 days.
func Default() *Policy {
	return &Policy{
		Version:         1,
		Name:            "ztota-default",
		Reject:          RejectAny,
		UnknownSeverity: UnknownBlock,
		ValidFor:        Duration(DefaultValidFor),
	}
}

// wirePolicy distinguishes absent fields from zero values.
type wirePolicy struct {
	Version         *int            `json:"version"`
	Name            *string         `json:"name"`
	Reject          *string         `json:"reject"`
	MinSeverity     *string         `json:"min_severity"`
	UnknownSeverity *string         `json:"unknown_severity"`
	ValidFor        *Duration       `json:"valid_for"`
	ModuleOnly      *ModuleOnlyRule `json:"module_only"`
	Exceptions      json.RawMessage `json:"exceptions"`
}

// Parse reads a policy document strictly and validates it (see
// Validate). Absent unknown_severity means UnknownBlock, absent valid_for
// means DefaultValidFor; version, name and reject are required.
func Parse(data []byte) (*Policy, error) {
	if len(data) == 0 {
		return nil, errors.New("certpolicy: parse: empty document")
	}
	if len(data) > MaxPolicyBytes {
		return nil, fmt.Errorf("certpolicy: parse: document is %d bytes, more than %d", len(data), MaxPolicyBytes)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("certpolicy: parse: document is not valid UTF-8")
	}
	if err := checkJSON(data); err != nil {
		return nil, fmt.Errorf("certpolicy: parse: %w", err)
	}
	var w wirePolicy
	if err := decodeStrict(data, &w); err != nil {
		return nil, fmt.Errorf("certpolicy: parse: %w", err)
	}
	p := &Policy{UnknownSeverity: UnknownBlock, ValidFor: Duration(DefaultValidFor)}
	switch {
	case w.Version == nil:
		return nil, errors.New("certpolicy: parse: version is required")
	case w.Name == nil:
		return nil, errors.New("certpolicy: parse: name is required")
	case w.Reject == nil:
		return nil, errors.New("certpolicy: parse: reject is required")
	}
	p.Version, p.Name, p.Reject = *w.Version, *w.Name, *w.Reject
	if w.MinSeverity != nil {
		p.MinSeverity = *w.MinSeverity
	}
	if w.UnknownSeverity != nil {
		p.UnknownSeverity = *w.UnknownSeverity
	}
	if w.ValidFor != nil {
		p.ValidFor = *w.ValidFor
	}
	p.ModuleOnly = w.ModuleOnly
	if !isNull(w.Exceptions) {
		p.Exceptions = append(json.RawMessage(nil), w.Exceptions...)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeStrict decodes one JSON value, rejecting unknown fields, duplicate
// (case-folded) keys, invalid UTF-8 and trailing data.
func decodeStrict(data []byte, v any) error { return strictjson.DecodeUnique(data, v, 64) }

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// Validate checks every field of p, normalizes the spelling of its
// severities in place (upper case, MEDIUM as MODERATE) and compiles its
// exceptions for Evaluate.
func (p *Policy) Validate() error {
	if p.Version < 1 || p.Version > MaxVersion {
		return fmt.Errorf("certpolicy: version %d: want 1..%d", p.Version, MaxVersion)
	}
	if err := checkName(p.Name); err != nil {
		return err
	}
	switch p.Reject {
	case RejectAny:
		if p.MinSeverity != "" {
			return fmt.Errorf("certpolicy: min_severity %q is only meaningful with reject %q", p.MinSeverity, RejectSeverity)
		}
	case RejectSeverity:
		sev, ok := normalizeSeverity(p.MinSeverity)
		if !ok || sev == vulnref.SeverityUnknown {
			return fmt.Errorf("certpolicy: min_severity %q: want one of %s, %s, %s (or MEDIUM), %s",
				p.MinSeverity, vulnref.SeverityCritical, vulnref.SeverityHigh, vulnref.SeverityModerate, vulnref.SeverityLow)
		}
		p.MinSeverity = sev
	default:
		return fmt.Errorf("certpolicy: reject %q: want %q or %q", p.Reject, RejectAny, RejectSeverity)
	}
	switch p.UnknownSeverity {
	case UnknownBlock, UnknownAllow:
	default:
		return fmt.Errorf("certpolicy: unknown_severity %q: want %q or %q", p.UnknownSeverity, UnknownBlock, UnknownAllow)
	}
	if d := time.Duration(p.ValidFor); d < MinValidFor || d > MaxValidFor {
		return fmt.Errorf("certpolicy: valid_for %s: want %s..%s", d, MinValidFor, MaxValidFor)
	}
	if err := p.ModuleOnly.validate(); err != nil {
		return err
	}
	p.exc = nil
	if isNull(p.Exceptions) {
		p.Exceptions = nil
		return nil
	}
	exc, err := compileExceptions(p.Exceptions)
	if err != nil {
		return fmt.Errorf("certpolicy: exceptions: %w", err)
	}
	p.exc = exc
	return nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("certpolicy: name is empty")
	}
	if len(name) > MaxNameBytes {
		return fmt.Errorf("certpolicy: name is %d bytes, more than %d", len(name), MaxNameBytes)
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("certpolicy: name %q has leading or trailing space", name)
	}
	for _, r := range name {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return fmt.Errorf("certpolicy: name %q holds a non-printable character", name)
		}
	}
	return nil
}

// normalizeSeverity maps a severity to its vulnref spelling; ok is false
// for anything that is not a severity ("" included).
func normalizeSeverity(s string) (string, bool) {
	switch u := strings.ToUpper(strings.TrimSpace(s)); u {
	case vulnref.SeverityCritical, vulnref.SeverityHigh, vulnref.SeverityModerate, vulnref.SeverityLow, vulnref.SeverityUnknown:
		return u, true
	case "MEDIUM":
		return vulnref.SeverityModerate, true
	default:
		return "", false
	}
}

// canonicalPolicy fixes the field order and spelling of the canonical
// encoding.
type canonicalPolicy struct {
	Version         int             `json:"version"`
	Name            string          `json:"name"`
	Reject          string          `json:"reject"`
	MinSeverity     string          `json:"min_severity,omitempty"`
	UnknownSeverity string          `json:"unknown_severity"`
	ValidFor        string          `json:"valid_for"`
	ModuleOnly      *ModuleOnlyRule `json:"module_only,omitempty"`
	Exceptions      json.RawMessage `json:"exceptions,omitempty"`
}

// Canonical returns the policy's canonical JSON encoding: fixed field
// order, no insignificant whitespace, severities in their vulnref
// spelling, valid_for as Go prints a duration ("720h0m0s"), and the
// exceptions document with object keys sorted and numbers in shortest
// form. Parse accepts it and yields a policy with the same digest. It
// fails only when Exceptions is not JSON (a policy that Validate rejects).
func (p *Policy) Canonical() ([]byte, error) {
	c := p.canonicalFields()
	if !isNull(p.Exceptions) {
		exc, err := canonicalJSON(p.Exceptions)
		if err != nil {
			return nil, fmt.Errorf("certpolicy: canonical exceptions: %w", err)
		}
		c.Exceptions = exc
	}
	return marshalNoEscape(c)
}

func (p *Policy) canonicalFields() canonicalPolicy {
	c := canonicalPolicy{
		Version:         p.Version,
		Name:            p.Name,
		Reject:          p.Reject,
		MinSeverity:     p.MinSeverity,
		UnknownSeverity: p.UnknownSeverity,
		ValidFor:        time.Duration(p.ValidFor).String(),
		ModuleOnly:      p.ModuleOnly.canonical(),
	}
	if s, ok := normalizeSeverity(c.MinSeverity); ok {
		c.MinSeverity = s
	}
	return c
}

// Digest returns "sha256:<hex>" of the canonical encoding (see
// Canonical), so it does not change with key order, whitespace or
// re-marshalling. For a policy whose Exceptions is not JSON at all the
// exceptions bytes are hashed as a JSON string instead, which no valid
// policy can produce.
func (p *Policy) Digest() string {
	b, err := p.Canonical()
	if err != nil {
		c := p.canonicalFields()
		s, _ := json.Marshal(string(p.Exceptions))
		c.Exceptions = s
		b, _ = marshalNoEscape(c)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// marshalNoEscape encodes v as JSON without HTML escaping and without a
// trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// validate checks the rule and normalizes its severity in place.
func (m *ModuleOnlyRule) validate() error {
	if m == nil {
		return nil
	}
	if m.MinSeverity != "" {
		sev, ok := normalizeSeverity(m.MinSeverity)
		if !ok || sev == vulnref.SeverityUnknown {
			return fmt.Errorf("certpolicy: module_only.min_severity %q: want one of %s, %s, %s (or MEDIUM), %s",
				m.MinSeverity, vulnref.SeverityCritical, vulnref.SeverityHigh, vulnref.SeverityModerate, vulnref.SeverityLow)
		}
		m.MinSeverity = sev
	}
	if len(m.Advisories) > MaxModuleOnlyAdvisories {
		return fmt.Errorf("certpolicy: module_only.advisories: %d ids, more than %d", len(m.Advisories), MaxModuleOnlyAdvisories)
	}
	for _, id := range m.Advisories {
		if id == "" || len(id) > MaxAdvisoryIDBytes || strings.TrimSpace(id) != id || strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) {
			return fmt.Errorf("certpolicy: module_only.advisories: bad id %q", truncateID(id))
		}
	}
	return nil
}

// canonical is the rule as the canonical encoding writes it: nil when it
// blocks nothing, advisories sorted without duplicates.
func (m *ModuleOnlyRule) canonical() *ModuleOnlyRule {
	if m == nil || (!m.All && m.MinSeverity == "" && len(m.Advisories) == 0) {
		return nil
	}
	c := &ModuleOnlyRule{All: m.All, MinSeverity: m.MinSeverity}
	if s, ok := normalizeSeverity(c.MinSeverity); ok {
		c.MinSeverity = s
	}
	c.Advisories = append([]string(nil), m.Advisories...)
	slices.Sort(c.Advisories)
	c.Advisories = slices.Compact(c.Advisories)
	return c
}

func truncateID(s string) string {
	if len(s) > MaxAdvisoryIDBytes {
		return s[:MaxAdvisoryIDBytes] + "..."
	}
	return s
}
