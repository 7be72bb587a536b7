package report

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCleanMakesHealthOutputReportable performs what a health command
// does to a report: ANSI colour codes, a terminal title (OSC), carriage
// returns, NUL and C1 controls, invalid UTF-8 and long multi-byte output.
// The cleaned text must validate as a detail and keep the readable words.
func TestCleanMakesHealthOutputReportable(t *testing.T) {
	raw := "\x1b[31;1mERROR\x1b[0m \x1b]0;title\x07disk \x00bad\r\n\tnext\u009b line \xff" + strings.Repeat("é", 3000)
	got := Clean(raw, MaxDetail, true)
	if !boundedText(got, MaxDetail, true) {
		t.Fatalf("cleaned detail does not validate: %q", got[:80])
	}
	if !strings.HasPrefix(got, "ERROR disk bad\n\tnext line \ufffd") {
		t.Fatalf("cleaned text %q", got[:40])
	}
	if !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Fatalf("cut text does not end in an ellipsis at a character boundary: %q", got[len(got)-8:])
	}
	if one := Clean("a\nb\tc", 100, false); one != "a b c" {
		t.Fatalf("single-line clean: %q", one)
	}
	for max := 0; max < 8; max++ {
		if c := Clean("ééééé", max, false); len(c) > max || !utf8.ValidString(c) {
			t.Fatalf("Clean(_, %d) = %q", max, c)
		}
	}
	// A report with the cleaned detail signs.
	r := New("dev-1", 1, StateRolledBack, t0)
	r.Detail = got
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}
