package osvdb

import (
	"strings"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ztota/ztota/internal/vulnref"
)

// recordSeverity rates a record from its severity[] CVSS vectors, else
// from database_specific.severity, else UNKNOWN.
func recordSeverity(v *osvschema.Vulnerability) (string, float64) {
	if sev, score, ok := fromSeverities(v.GetSeverity()); ok {
		return sev, score
	}
	if sev := ratingWord(structString(v.GetDatabaseSpecific(), "severity")); sev != "" {
		return sev, 0
	}
	return vulnref.SeverityUnknown, 0
}

// affectedSeverity rates one affected entry: its own severity[] (schema
// 1.7), else the record's severity[], else the severity strings of its
// ecosystem_specific and database_specific, else the record's
// database_specific, else UNKNOWN.
func affectedSeverity(rec *Record, a *osvschema.Affected) (string, float64) {
	if sev, score, ok := fromSeverities(a.GetSeverity()); ok {
		return sev, score
	}
	if sev, score, ok := fromSeverities(rec.Vuln.GetSeverity()); ok {
		return sev, score
	}
	for _, s := range []*structpb.Struct{a.GetEcosystemSpecific(), a.GetDatabaseSpecific()} {
		if sev := ratingWord(structString(s, "severity")); sev != "" {
			return sev, 0
		}
	}
	return rec.Severity, rec.Score
}

// fromSeverities returns the highest rating among the parseable entries.
// CVSS vectors give a score; an "Ubuntu" entry gives a word only.
func fromSeverities(ss []*osvschema.Severity) (sev string, score float64, ok bool) {
	for _, s := range ss {
		var cur string
		var sc float64
		switch s.GetType() {
		case osvschema.Severity_CVSS_V2, osvschema.Severity_CVSS_V3, osvschema.Severity_CVSS_V4:
			var good bool
			sc, good = cvssScore(s.GetScore())
			if !good {
				continue
			}
			cur = cvssRating(s.GetType(), sc)
		case osvschema.Severity_Ubuntu:
			if cur = ratingWord(s.GetScore()); cur == "" {
				continue
			}
		default:
			continue
		}
		if !ok || rank(cur) > rank(sev) || (cur == sev && sc > score) {
			sev, score, ok = cur, sc, true
		}
	}
	return sev, score, ok
}

// cvssScore computes the base score of a CVSS v2, v3.0, v3.1 or v4.0 vector.
func cvssScore(vec string) (float64, bool) {
	switch {
	case strings.HasPrefix(vec, "CVSS:4.0/"):
		c, err := gocvss40.ParseVector(vec)
		if err != nil {
			return 0, false
		}
		return c.Score(), true
	case strings.HasPrefix(vec, "CVSS:3.1/"):
		c, err := gocvss31.ParseVector(vec)
		if err != nil {
			return 0, false
		}
		return c.BaseScore(), true
	case strings.HasPrefix(vec, "CVSS:3.0/"):
		c, err := gocvss30.ParseVector(vec)
		if err != nil {
			return 0, false
		}
		return c.BaseScore(), true
	default:
		c, err := gocvss20.ParseVector(vec)
		if err != nil {
			return 0, false
		}
		return c.BaseScore(), true
	}
}

// cvssRating maps a base score to the qualitative rating of its CVSS
// version. CVSS v2 has no Critical band; a 0.0 ("None") rates LOW.
func cvssRating(t osvschema.Severity_Type, score float64) string {
	switch {
	case score >= 9.0 && t != osvschema.Severity_CVSS_V2:
		return vulnref.SeverityCritical
	case score >= 7.0:
		return vulnref.SeverityHigh
	case score >= 4.0:
		return vulnref.SeverityModerate
	default:
		return vulnref.SeverityLow
	}
}

// ratingWord maps a severity word to a vulnref level, "" if unknown.
func ratingWord(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return vulnref.SeverityCritical
	case "HIGH", "IMPORTANT":
		return vulnref.SeverityHigh
	case "MODERATE", "MEDIUM":
		return vulnref.SeverityModerate
	case "LOW", "NEGLIGIBLE":
		return vulnref.SeverityLow
	}
	return ""
}

// rank orders severities, higher is more serious.
func rank(s string) int {
	switch s {
	case vulnref.SeverityCritical:
		return 4
	case vulnref.SeverityHigh:
		return 3
	case vulnref.SeverityModerate:
		return 2
	case vulnref.SeverityLow:
		return 1
	}
	return 0
}

// structString returns a string field of a JSON object, "" if absent.
func structString(s *structpb.Struct, key string) string {
	if s == nil {
		return ""
	}
	return s.GetFields()[key].GetStringValue()
}
