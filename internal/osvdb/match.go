package osvdb

import (
	"fmt"
	"sort"

	"github.com/google/osv-scalibr/semantic"

	"github.com/ztota/ztota/internal/vulnref"
)

// Match returns the advisories that affect c, one finding per record,
// sorted by ID. Withdrawn records never match. A component version that
// cannot be compared matches only explicit versions lists; use Evaluate to
// learn about it.
func (db *DB) Match(c vulnref.Component) []vulnref.Finding {
	f, _ := db.Evaluate(c)
	return f
}

// Evaluate is Match that also reports, as an error wrapping ErrBadVersion,
// a component version that the ranges of a known package cannot be
// compared with (so "not affected" would be unfounded). The findings it
// returns alongside such an error are still valid.
func (db *DB) Evaluate(c vulnref.Component) ([]vulnref.Finding, error) {
	f, _, err := db.evaluate(c)
	return f, err
}

// evaluate is Evaluate that also returns, for each finding, the affected
// entries that matched.
func (db *DB) evaluate(c vulnref.Component) ([]vulnref.Finding, [][]*affected, error) {
	base, release := splitEcosystem(c.Ecosystem)
	bucket := db.index[vulnref.Key{Ecosystem: base, Name: c.Name}]
	if len(bucket) == 0 {
		return nil, nil, nil
	}
	var hits [][]*affected
	cv := compVersion{base: base, raw: normalizeVersion(base, c.Name, c.Version)}
	var out []vulnref.Finding
	var fixedOf []event // fixed event behind out[i].Fixed, for merging
	var firstErr error
	for _, e := range bucket {
		if e.release != "" && release != "" && e.release != release {
			continue
		}
		hit, fixed, err := e.affects(&cv)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if !hit || !e.matchesPlatform(c.GOOS, c.GOARCH) {
			continue
		}
		// Buckets hold records in id order, each record's entries together,
		// so a second entry of the same record follows the first and out
		// stays sorted by id.
		i := len(out) - 1
		if i < 0 || out[i].ID != e.rec.ID() {
			out = append(out, vulnref.Finding{
				ID:        e.rec.ID(),
				Aliases:   append([]string(nil), e.rec.Vuln.GetAliases()...),
				Ecosystem: c.Ecosystem,
				Package:   c.Name,
				Version:   c.Version,
				Fixed:     fixed.raw,
				Severity:  e.severity,
				Score:     e.score,
				Summary:   e.rec.Vuln.GetSummary(),
			})
			fixedOf = append(fixedOf, fixed)
			hits = append(hits, []*affected{e})
			continue
		}
		hits[i] = append(hits[i], e)
		// A second affected entry of the same record for this package.
		if lowerFixed(fixed, fixedOf[i]) {
			out[i].Fixed, fixedOf[i] = fixed.raw, fixed
		}
		if rank(e.severity) > rank(out[i].Severity) || (e.severity == out[i].Severity && e.score > out[i].Score) {
			out[i].Severity, out[i].Score = e.severity, e.score
		}
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("osvdb: %s %s@%q: %w", c.Ecosystem, c.Name, c.Version, firstErr)
	}
	return out, hits, firstErr
}

// MatchAll matches every component and returns all findings sorted by ID,
// then ecosystem, package and version, without duplicates (the same
// component listed twice yields its findings once).
func (db *DB) MatchAll(cs []vulnref.Component) []vulnref.Finding {
	var out []vulnref.Finding
	for _, c := range cs {
		out = append(out, db.Match(c)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return findingLess(out[i], out[j]) })
	dedup := out[:0]
	for i, f := range out {
		if i > 0 && sameFinding(f, out[i-1]) {
			continue
		}
		dedup = append(dedup, f)
	}
	return dedup
}

func findingLess(a, b vulnref.Finding) bool {
	if a.ID != b.ID {
		return a.ID < b.ID
	}
	if a.Ecosystem != b.Ecosystem {
		return a.Ecosystem < b.Ecosystem
	}
	if a.Package != b.Package {
		return a.Package < b.Package
	}
	return a.Version < b.Version
}

func sameFinding(a, b vulnref.Finding) bool {
	return a.ID == b.ID && a.Ecosystem == b.Ecosystem && a.Package == b.Package && a.Version == b.Version
}

// lowerFixed reports whether fixed event a should replace b as the
// finding's fixed version: b is unset, or both are set in the same
// ordering and a is lower.
func lowerFixed(a, b event) bool {
	if a.raw == "" {
		return false
	}
	if b.raw == "" {
		return true
	}
	c, err := a.v.Compare(b.v)
	return err == nil && c < 0
}

// compVersion is a component version, parsed lazily once per scheme.
type compVersion struct {
	base, raw string

	semver, eco       semantic.Version
	semverErr, ecoErr error
	semverOK, ecoOK   bool
}

func (cv *compVersion) get(sch scheme, eco string) (semantic.Version, error) {
	if sch == schemeSemver {
		if !cv.semverOK {
			cv.semver, cv.semverErr = parseVersion(schemeSemver, eco, cv.raw)
			cv.semverOK = true
		}
		return cv.semver, cv.semverErr
	}
	if !cv.ecoOK {
		// All entries of one index bucket share the ecosystem before ':',
		// which alone selects the ordering.
		cv.eco, cv.ecoErr = parseVersion(schemeEcosystem, eco, cv.raw)
		cv.ecoOK = true
	}
	return cv.eco, cv.ecoErr
}

// affects evaluates the entry for a version following the OSV schema's
// algorithm: an exact entry in versions, or any SEMVER/ECOSYSTEM range
// that includes the version and is before its limits. fixed is the lowest
// fixed event above the version among the ranges that include it. err is
// the first failure to parse or compare the version.
func (e *affected) affects(cv *compVersion) (hit bool, fixed event, err error) {
	if _, ok := e.versions[cv.raw]; ok {
		hit = true
	}
	for i := range e.ranges {
		r := &e.ranges[i]
		v, perr := cv.get(r.scheme, e.ecosystem)
		if perr == nil {
			var in bool
			var f event
			in, f, perr = r.includes(v)
			if perr == nil && in {
				hit = true
				if lowerFixed(f, fixed) {
					fixed = f
				}
			}
		}
		if perr != nil && err == nil {
			err = perr
		}
	}
	return hit, fixed, err
}

// includes runs the OSV evaluation over the range's sorted events:
// introduced sets affected when v >= it, fixed clears it when v >= it,
// last_affected clears it when v > it; limits bound the range from above.
func (r *vrange) includes(v semantic.Version) (bool, event, error) {
	if len(r.limits) > 0 {
		below := false
		for _, l := range r.limits {
			c, err := cmp(v, l)
			if err != nil {
				return false, event{}, err
			}
			if c < 0 {
				below = true
				break
			}
		}
		if !below {
			return false, event{}, nil
		}
	}
	affected := false
	for i, ev := range r.events {
		c, err := cmp(v, ev)
		if err != nil {
			return false, event{}, err
		}
		if c < 0 {
			// Events are sorted: this and every later event lie above v and
			// cannot change the verdict; the first later fixed event is the
			// lowest fixed version above v.
			if !affected {
				return false, event{}, nil
			}
			for _, f := range r.events[i:] {
				if f.kind == evFixed {
					return true, f, nil
				}
			}
			return true, event{}, nil
		}
		switch ev.kind {
		case evIntroduced:
			affected = true
		case evFixed:
			affected = false
		case evLastAffected:
			if c > 0 {
				affected = false
			}
		}
	}
	return affected, event{}, nil
}

// cmp compares a version with an event's version; introduced "0" is below
// and limit "*" above every version.
func cmp(v semantic.Version, ev event) (int, error) {
	switch {
	case ev.zero:
		return 1, nil
	case ev.star:
		return -1, nil
	}
	c, err := v.Compare(ev.v)
	if err != nil {
		return 0, fmt.Errorf("%w: comparing with %q: %v", ErrBadVersion, ev.raw, err)
	}
	return c, nil
}
