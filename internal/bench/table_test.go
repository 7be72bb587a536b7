package bench_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/bench"
	"github.com/ztota/ztota/internal/bundle"
	"github.com/ztota/ztota/internal/testbed"
)

func TestTableShowsRatioGoalAndVerdict(t *testing.T) {
	var buf bytes.Buffer
	err := bench.WriteTable(&buf, []bench.Figure{
		{Name: "fast", Value: 60, Unit: "req/s", RefName: "ref", RefValue: 100, RatioAtLeast: 0.5},
		{Name: "slow", Value: 40, Unit: "req/s", RefName: "ref", RefValue: 100, RatioAtLeast: 0.5},
		{Name: "small", Value: 12, Unit: "MB", RefName: "ref", RefValue: 2, ValueAtMost: 20},
		{Name: "bare", Value: 3, Unit: "MB"},
	})
	fatalIf(t, err)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("table:\n%s", buf.String())
	}
	cells := regexp.MustCompile(`\s{2,}`)
	for i, want := range [][3]string{{"0.60", "ratio ≥ 0.50", "yes"}, {"0.40", "ratio ≥ 0.50", "no"}, {"6.00", "≤ 20.0 MB", "yes"}, {"-", "-", "-"}} {
		c := cells.Split(strings.TrimSpace(lines[i+1]), -1)
		if len(c) != 7 || c[4] != want[0] || c[5] != want[1] || c[6] != want[2] {
			t.Errorf("row %d cells %q, want ratio, goal, met = %q", i+1, c, want)
		}
	}
}

func TestMedianIsTheMiddleOfUnsortedValues(t *testing.T) {
	if got := bench.Median([]time.Duration{5, 1, 3}); got != 3 {
		t.Fatalf("Median = %d, want 3", got)
	}
	if got := bench.MedianFloat([]float64{4, 1, 3, 2}); got != 2 {
		t.Fatalf("MedianFloat = %v, want 2 (lower middle)", got)
	}
	if bench.Median(nil) != 0 || bench.MBps(1, 0) != 0 {
		t.Fatal("empty inputs must give 0")
	}
}

// TestBundlePaddingIsIncompressible: padding of zeros would flatter any
// path that compresses; the bench bundle's padding must not shrink, and
// the bundle must extract with the production limits.
func TestBundlePaddingIsIncompressible(t *testing.T) {
	dir := t.TempDir()
	ctx := testbed.Ctx(t)
	p := dir + "/b.tar"
	n, err := bench.WriteScriptBundle(ctx, p, "1.0.0", 1<<20, 7)
	fatalIf(t, err)
	if n < 1<<20 {
		t.Fatalf("bundle is %d bytes, want at least the padding", n)
	}
	if _, err := bench.WriteScriptBundle(ctx, p, "1.0.0", 1, 7); err == nil {
		t.Fatal("an existing bundle was overwritten")
	}
	data, err := os.ReadFile(p)
	fatalIf(t, err)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	if float64(z.Len()) < 0.99*float64(len(data)) {
		t.Fatalf("bundle of %d bytes gzips to %d: padding is compressible", len(data), z.Len())
	}
	st, err := bundle.Extract(ctx, bytes.NewReader(data), dir+"/x", bundle.DefaultLimits)
	fatalIf(t, err)
	if st.Files != 3 || st.Bytes < 1<<20 {
		t.Fatalf("extracted %+v", st)
	}
}
