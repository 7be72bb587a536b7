package osvdb

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ztota/ztota/internal/vulnref"
)

// Reasons a single record is rejected. A rejected record is skipped and
// listed in DB.Rejected; the rest of the snapshot still loads.
var (
	ErrBadJSON              = errors.New("not a valid OSV JSON record")
	ErrBadID                = errors.New("missing or malformed id")
	ErrBadPackage           = errors.New("affected package without name or ecosystem")
	ErrRangeType            = errors.New("missing or unknown range type")
	ErrBadEvent             = errors.New("malformed range event")
	ErrBadVersion           = errors.New("unparsable version")
	ErrUnsupportedEcosystem = errors.New("ecosystem has no known version ordering")
)

// MaxIDLen bounds the length of a record id.
const MaxIDLen = 128

// idPattern is the character set of OSV ids in use ("GO-2022-0969",
// "GHSA-xxxx-xxxx-xxxx", "DSA-5000-1", "ALSA-2022:0001", ...).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]*$`)

// semverPattern is the SemVer 2.0 grammar without a leading "v", as OSV
// requires for SEMVER ranges and the Go ecosystem. It only validates; the
// ordering comes from the semantic package.
var semverPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?` +
	`(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

var unmarshalOpts = protojson.UnmarshalOptions{DiscardUnknown: true}

// Record is one OSV record of a snapshot. It is shared by the DB and its
// callers: treat it as read-only.
type Record struct {
	// Vuln is the record as parsed with the OSV schema bindings.
	Vuln *osvschema.Vulnerability
	// Digest is "sha256:<hex>" over the record's raw JSON bytes.
	Digest string
	// File names the zip entry or file (relative to the loaded directory)
	// the record came from.
	File string
	// Withdrawn is true when the record carries a withdrawn time, whatever
	// that time is. Withdrawn records never match.
	Withdrawn bool
	// Severity and Score are the record's own rating (see the package doc);
	// an affected entry may carry a more specific one.
	Severity string
	Score    float64

	affected []*affected
}

// ID returns the record's id.
func (r *Record) ID() string { return r.Vuln.GetId() }

// affected is one compiled affected[] entry that names a package.
type affected struct {
	rec       *Record
	key       vulnref.Key // index key: ecosystem before ':', package name
	ecosystem string      // as the record writes it
	release   string      // ecosystem part after ':', "" if none
	versions  map[string]struct{}
	ranges    []vrange
	severity  string
	score     float64
	// imports are a Go entry's ecosystem_specific.imports (package path,
	// vulnerable symbols, platforms); nil when it names none.
	imports []goImport
}

// goImport is one vulnerable package of a Go entry: its import path, its
// vulnerable symbols (none: the whole package) and its platform
// restriction (an empty list means any).
type goImport struct {
	path         string
	symbols      []string
	goos, goarch []string
}

// matchesPlatform reports whether a component built for goos/goarch can be
// affected by e, with govulncheck's rule: an unknown platform or an entry
// without imports matches; otherwise one import must allow both.
func (e *affected) matchesPlatform(goos, goarch string) bool {
	if len(e.imports) == 0 {
		return true
	}
	for _, p := range e.imports {
		if platformHas(p.goos, goos) && platformHas(p.goarch, goarch) {
			return true
		}
	}
	return false
}

func platformHas(list []string, v string) bool {
	if v == "" || len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// goImports reads ecosystem_specific.imports[] of a Go entry.
func goImports(a *osvschema.Affected) []goImport {
	es := a.GetEcosystemSpecific()
	if es == nil {
		return nil
	}
	imports := es.GetFields()["imports"].GetListValue().GetValues()
	var out []goImport
	for _, imp := range imports {
		f := imp.GetStructValue().GetFields()
		out = append(out, goImport{
			path:    f["path"].GetStringValue(),
			symbols: stringList(f["symbols"]),
			goos:    stringList(f["goos"]),
			goarch:  stringList(f["goarch"]),
		})
	}
	return out
}

func stringList(v *structpb.Value) []string {
	var out []string
	for _, x := range v.GetListValue().GetValues() {
		if s := x.GetStringValue(); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// scheme says how a range's versions are ordered.
type scheme uint8

const (
	schemeSemver    scheme = iota // SEMVER range: SemVer 2.0
	schemeEcosystem               // ECOSYSTEM range: the ecosystem's own order
)

type eventKind uint8

const (
	evIntroduced eventKind = iota
	evFixed
	evLastAffected
	evLimit
)

// event is one range event with its version parsed once at load time.
type event struct {
	kind eventKind
	raw  string
	v    semantic.Version
	zero bool // introduced "0": below every version
	star bool // limit "*": above every version
}

// vrange is one SEMVER or ECOSYSTEM range, events sorted by version.
type vrange struct {
	scheme scheme
	events []event // introduced, fixed, last_affected
	limits []event
}

// parseRecord parses and compiles one raw OSV record. It does not bound
// len(raw); the loaders do.
func parseRecord(raw []byte) (*Record, error) {
	v := &osvschema.Vulnerability{}
	if err := unmarshalOpts.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	id := v.GetId()
	if id == "" || len(id) > MaxIDLen || !idPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, truncate(id, MaxIDLen))
	}
	sum := sha256.Sum256(raw)
	rec := &Record{
		Vuln:      v,
		Digest:    "sha256:" + hex.EncodeToString(sum[:]),
		Withdrawn: v.GetWithdrawn() != nil,
	}
	rec.Severity, rec.Score = recordSeverity(v)
	for i, a := range v.GetAffected() {
		e, err := compileAffected(rec, a)
		if err != nil {
			return nil, fmt.Errorf("%s: affected[%d]: %w", id, i, err)
		}
		if e != nil {
			rec.affected = append(rec.affected, e)
		}
	}
	return rec, nil
}

// compileAffected validates one affected entry and parses its versions. An
// entry without a package (allowed for GIT-only entries) yields nil.
func compileAffected(rec *Record, a *osvschema.Affected) (*affected, error) {
	if a.GetPackage() == nil {
		return nil, nil
	}
	name, eco := a.GetPackage().GetName(), a.GetPackage().GetEcosystem()
	if name == "" || eco == "" {
		return nil, fmt.Errorf("%w (name %q, ecosystem %q)", ErrBadPackage, name, eco)
	}
	base, release := splitEcosystem(eco)
	e := &affected{
		rec:       rec,
		key:       vulnref.Key{Ecosystem: base, Name: name},
		ecosystem: eco,
		release:   release,
	}
	e.severity, e.score = affectedSeverity(rec, a)
	if base == "Go" {
		e.imports = goImports(a)
	}
	if vs := a.GetVersions(); len(vs) > 0 {
		e.versions = make(map[string]struct{}, len(vs))
		for _, s := range vs {
			e.versions[s] = struct{}{}
		}
	}
	for j, r := range a.GetRanges() {
		var sch scheme
		switch r.GetType() {
		case osvschema.Range_GIT:
			continue // commit ranges need the source repository; see the package doc
		case osvschema.Range_SEMVER:
			sch = schemeSemver
		case osvschema.Range_ECOSYSTEM:
			sch = schemeEcosystem
		default:
			return nil, fmt.Errorf("ranges[%d]: %w (%v)", j, ErrRangeType, r.GetType())
		}
		vr, err := compileRange(sch, eco, r.GetEvents())
		if err != nil {
			return nil, fmt.Errorf("ranges[%d] (%v): %w", j, r.GetType(), err)
		}
		e.ranges = append(e.ranges, vr)
	}
	return e, nil
}

// compileRange parses a range's events and sorts them by version.
func compileRange(sch scheme, eco string, evs []*osvschema.Event) (vrange, error) {
	vr := vrange{scheme: sch}
	hasIntroduced := false
	for k, ev := range evs {
		kind, raw, n := evIntroduced, "", 0
		if s := ev.GetIntroduced(); s != "" {
			kind, raw, n = evIntroduced, s, n+1
		}
		if s := ev.GetFixed(); s != "" {
			kind, raw, n = evFixed, s, n+1
		}
		if s := ev.GetLastAffected(); s != "" {
			kind, raw, n = evLastAffected, s, n+1
		}
		if s := ev.GetLimit(); s != "" {
			kind, raw, n = evLimit, s, n+1
		}
		if n != 1 {
			return vr, fmt.Errorf("events[%d]: %w: want exactly one of introduced, fixed, last_affected, limit; got %d", k, ErrBadEvent, n)
		}
		e := event{kind: kind, raw: raw}
		switch {
		case kind == evIntroduced && raw == "0":
			e.zero = true
		case kind == evLimit && raw == "*":
			e.star = true
		default:
			v, err := parseVersion(sch, eco, raw)
			if err != nil {
				return vr, fmt.Errorf("events[%d]: %w", k, err)
			}
			e.v = v
		}
		if kind == evIntroduced {
			hasIntroduced = true
		}
		if kind == evLimit {
			vr.limits = append(vr.limits, e)
		} else {
			vr.events = append(vr.events, e)
		}
	}
	if !hasIntroduced {
		return vr, fmt.Errorf("%w: range has no introduced event", ErrBadEvent)
	}
	var cmpErr error
	sort.SliceStable(vr.events, func(i, j int) bool {
		c, err := compareEvents(vr.events[i], vr.events[j])
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		return c < 0
	})
	if cmpErr != nil {
		return vr, fmt.Errorf("%w: %v", ErrBadVersion, cmpErr)
	}
	return vr, nil
}

// compareEvents orders events by version, introduced "0" first.
func compareEvents(a, b event) (int, error) {
	switch {
	case a.zero && b.zero:
		return 0, nil
	case a.zero:
		return -1, nil
	case b.zero:
		return 1, nil
	}
	return a.v.Compare(b.v)
}

// parseVersion parses a version of a record or a component for a range of
// the given scheme. SEMVER ranges, and every range in the Go ecosystem,
// must hold SemVer 2.0 versions.
func parseVersion(sch scheme, eco, s string) (semantic.Version, error) {
	base, _ := splitEcosystem(eco)
	if sch == schemeSemver || base == ecoGo {
		if !semverPattern.MatchString(s) {
			return nil, fmt.Errorf("%w: %q is not a SemVer 2.0 version", ErrBadVersion, truncate(s, 64))
		}
		return semantic.ParseSemverVersion(s), nil
	}
	v, err := semantic.Parse(s, base)
	if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedEcosystem, eco)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q in %s: %v", ErrBadVersion, truncate(s, 64), eco, err)
	}
	return v, nil
}

// splitEcosystem splits "Debian:12" into "Debian" and "12".
func splitEcosystem(eco string) (base, release string) {
	base, release, _ = strings.Cut(eco, ":")
	return base, release
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
