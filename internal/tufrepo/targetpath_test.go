package tufrepo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestTargetPathRulesMatchTheReportFormat: every path CheckTargetPath
// accepts can be named in a signed report, and the odd names of attack 8
// (NUL, newline, 5,000 bytes) are refused with ErrMalformed.
func TestTargetPathRulesMatchTheReportFormat(t *testing.T) {
	ok := []string{
		"app/1.0/app.tar",
		"app/1.0+build.2/app-1.0.tar.gz",
		"app/1.0/ünïcode name.tar",
		"app/1.0/" + strings.Repeat("x", tufrepo.MaxTargetPath-len("app/1.0/")),
	}
	for _, p := range ok {
		if err := tufrepo.CheckTargetPath(p); err != nil {
			t.Errorf("%q: %v", p, err)
			continue
		}
		r := report.New("dev-1", 1, report.StateRefused, time.Now())
		r.Target = p
		if err := r.Validate(); err != nil {
			t.Errorf("an accepted target path cannot be reported: %q: %v", p, err)
		}
	}
	bad := []string{
		"", "app/1.0/a\x00b", "app/1.0/a\nb", "app/1.0/a\rb", "app/1.0/\u0085x",
		"app/1.0/" + strings.Repeat("a", 5000),
		"app/1.0/" + strings.Repeat("x", tufrepo.MaxTargetPath+1-len("app/1.0/")),
		"app/1.0/", "app/1.0/.", "app/1.0/..", `app/1.0/a\b`, "app/1.0/a/b", "app/1.0",
		"/app/1.0/a", ".app/1.0/a", "app/../a", "app/1.0/\xff",
	}
	for _, p := range bad {
		if err := tufrepo.CheckTargetPath(p); !errors.Is(err, tufrepo.ErrMalformed) {
			t.Errorf("%q: got %v, want ErrMalformed", p, err)
		}
	}
	im := tufrepo.ImageMeta{Name: "app", Version: "1.0"}
	if err := tufrepo.CheckReleasePath("app/1.1/app.tar", im); !errors.Is(err, tufrepo.ErrMalformed) {
		t.Errorf("a path naming another version: %v", err)
	}
	if err := tufrepo.CheckReleasePath("app/1.0/app.tar", im); err != nil {
		t.Error(err)
	}
}
