package bench

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Figure is one measured value next to its reference from the same run.
type Figure struct {
	Name     string
	Value    float64
	Unit     string // of Value and RefValue
	RefName  string // "" when there is no reference
	RefValue float64
	// Goals; zero means none.
	RatioAtLeast float64 // Value/RefValue must be at least this
	ValueAtMost  float64 // Value must be at most this
}

// Ratio is Value/RefValue, or 0 without a reference.
func (f Figure) Ratio() float64 {
	if f.RefValue == 0 {
		return 0
	}
	return f.Value / f.RefValue
}

// Met says whether the goals hold; ok is false when there is no goal.
func (f Figure) Met() (met, ok bool) {
	switch {
	case f.RatioAtLeast > 0 && f.ValueAtMost > 0:
		return f.Ratio() >= f.RatioAtLeast && f.Value <= f.ValueAtMost, true
	case f.RatioAtLeast > 0:
		return f.Ratio() >= f.RatioAtLeast, true
	case f.ValueAtMost > 0:
		return f.Value <= f.ValueAtMost, true
	}
	return false, false
}

func (f Figure) goal() string {
	var g string
	if f.RatioAtLeast > 0 {
		g = fmt.Sprintf("ratio ≥ %.2f", f.RatioAtLeast)
	}
	if f.ValueAtMost > 0 {
		if g != "" {
			g += ", "
		}
		g += fmt.Sprintf("≤ %.1f %s", f.ValueAtMost, f.Unit)
	}
	if g == "" {
		return "-"
	}
	return g
}

// WriteTable prints figures as the table described in the package doc.
func WriteTable(w io.Writer, figs []Figure) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\treference\tref value\tratio\tgoal\tmet")
	for _, f := range figs {
		ref, refv, ratio := "-", "-", "-"
		if f.RefName != "" {
			ref, refv, ratio = f.RefName, num(f.RefValue)+" "+f.Unit, fmt.Sprintf("%.2f", f.Ratio())
		}
		met := "-"
		if m, ok := f.Met(); ok {
			met = map[bool]string{true: "yes", false: "no"}[m]
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", f.Name, num(f.Value), f.Unit, ref, refv, ratio, f.goal(), met)
	}
	return tw.Flush()
}

func num(v float64) string {
	if v >= 100 || v <= -100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// MB converts bytes to megabytes (10^6 bytes).
func MB(bytes int64) float64 { return float64(bytes) / 1e6 }

// Median returns the median of ds (the lower middle for an even count),
// or 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// MedianFloat is Median for rates.
func MedianFloat(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
