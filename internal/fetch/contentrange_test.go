package fetch

import (
	"errors"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	good := map[string]contentRange{
		"bytes 0-0/1":             {0, 0, 1},
		"bytes 100-199/200":       {100, 199, 200},
		"bytes 5-9/*":             {5, 9, -1},
		"bytes 0-999999/10000000": {0, 999999, 10000000},
	}
	for in, want := range good {
		got, err := parseContentRange(in)
		if err != nil || got != want {
			t.Errorf("parseContentRange(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "bytes */200", "items 0-1/2", "bytes 0-1", "bytes 1-0/5", "bytes 0-5/5",
		"bytes -1-5/10", "bytes +0-5/10", "bytes 0-5/ 10", "bytes 0-9999999999999999999/*",
		"bytes 0x1-2/3", "bytes 0-1/2/3", "bytes  0-1/2",
	} {
		if _, err := parseContentRange(in); !errors.Is(err, ErrBadResponse) {
			t.Errorf("parseContentRange(%q) accepted or wrong error: %v", in, err)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1", "bytes 5-9/*", "bytes */1", "bytes 1-0/5", "bytes 99999999999999999-999999999999999999/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := parseContentRange(s)
		if err != nil {
			return
		}
		if cr.start < 0 || cr.end < cr.start || (cr.total != -1 && cr.total <= cr.end) || len(s) > maxContentRangeLen {
			t.Fatalf("parseContentRange(%q) = %+v breaks its invariant", s, cr)
		}
	})
}
