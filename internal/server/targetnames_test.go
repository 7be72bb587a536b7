package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestOddTargetNamesAreRefusedBeforeStoring performs attack 8: the
// integrator's key signs image targets whose names hold a NUL, a newline
// or 5,000 bytes. The old server stored them; the agent refused such a
// target but could not sign a report naming it, so every deployment of it
// ran for ever. The server now refuses the whole document with a 400 that
// names the rule, and stores nothing (no release, no metadata).
func TestOddTargetNamesAreRefusedBeforeStoring(t *testing.T) {
	e := newEnv(t, nil)
	key := e.targetsKey(t)
	cases := map[string]string{
		"NUL":         "app/1.0/app\x00.tar",
		"newline":     "app/1.0/app\n.tar",
		"5,000 bytes": "app/1.0/" + strings.Repeat("a", 5000),
		"tab":         "app/1.0/app\t.tar",
		"DEL":         "app/1.0/app\x7f.tar",
		"257 bytes":   "app/1.0/" + strings.Repeat("b", tufrepo.MaxTargetPath+1-len("app/1.0/")),
		"backslash":   `app/1.0/..\app.tar`,
		"four parts":  "app/1.0/x/app.tar",
	}
	for name, odd := range cases {
		t.Run(name, func(t *testing.T) {
			// A valid target next to the odd one: the document is refused
			// as a whole, the valid one is not stored either.
			goodPath, goodTF := e.uploaded(t, "1.0", 64, "hw1")
			_, oddTF := e.uploaded(t, "1.0", 64, "hw1")
			body := e.nextTargets(t, key, func(m *md) {
				m.Signed.Targets[goodPath] = goodTF
				m.Signed.Targets[odd] = oddTF
			})
			unchanged(t, e.Server.Store(), func() {
				a := e.api(t, "POST", "/v1/image/targets", body)
				wantRefused(t, name, a, http.StatusBadRequest)
				if !strings.Contains(a.errMsg(), "target path") || !strings.Contains(a.errMsg(), "nothing from this targets document was stored") {
					t.Errorf("%s: message does not name the rule: %q", name, a.errMsg())
				}
				if len(a.body) > 2048 {
					t.Errorf("%s: the refusal echoes %d bytes", name, len(a.body))
				}
			})
		})
	}
	// The longest accepted name fits a signed report naming it.
	longest := "app/1.0/" + strings.Repeat("c", tufrepo.MaxTargetPath-len("app/1.0/"))
	_, tf := e.uploaded(t, "1.0", 64, "hw1")
	if a := e.api(t, "POST", "/v1/image/targets", e.nextTargets(t, key, func(m *md) { m.Signed.Targets[longest] = tf })); a.code != http.StatusCreated {
		t.Fatalf("a name of exactly %d bytes: %s", tufrepo.MaxTargetPath, a)
	}
	d := e.enroll(t, "dev-a", "hw1", "")
	if got := e.mustPost(t, d, d.rep(report.StateRefused, longest)); got.Accepted != 1 {
		t.Fatalf("a report naming the longest target: %+v", got)
	}
}
