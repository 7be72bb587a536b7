package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemoRunsTheWholeStory runs what "go run ./cmd/ztota demo" runs: three
// devices commit v1, then all roll back from the unhealthy v2.
func TestDemoRunsTheWholeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sample module twice; skipped with -short")
	}
	var out bytes.Buffer
	res, err := RunResult(context.Background(), Options{Devices: 3, Out: &out, Timeout: 4 * time.Minute})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.V1Committed != 3 || res.V2RolledBack != 3 {
		t.Fatalf("v1 committed on %d, v2 rolled back on %d; want 3 and 3", res.V1Committed, res.V2RolledBack)
	}
	for _, want := range []string{"committed", "rolled-back", "health check failed"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("timeline lacks %q", want)
		}
	}
}
