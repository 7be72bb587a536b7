package fetch

import (
	"fmt"
	"strconv"
	"strings"
)

// contentRange is a parsed "Content-Range: bytes <start>-<end>/<total>".
// Invariant after parsing: 0 ≤ start ≤ end, and total is -1 ("*") or > end.
type contentRange struct {
	start, end, total int64
}

const maxContentRangeLen = 128

// parseContentRange parses a byte-range Content-Range header value of a 206
// response (RFC 9110 §14.4). The unsatisfied form "bytes */<total>" and
// other units are rejected.
func parseContentRange(v string) (contentRange, error) {
	bad := func(why string) (contentRange, error) {
		return contentRange{}, fmt.Errorf("%w: Content-Range %.64q: %s", ErrBadResponse, v, why)
	}
	if len(v) > maxContentRangeLen {
		return bad("too long")
	}
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return bad("unit is not bytes")
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no /total")
	}
	s, e, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("no start-end")
	}
	var cr contentRange
	var err error
	if cr.start, err = parseDigits(s); err != nil {
		return bad("start: " + err.Error())
	}
	if cr.end, err = parseDigits(e); err != nil {
		return bad("end: " + err.Error())
	}
	if cr.end < cr.start {
		return bad("end before start")
	}
	if tot == "*" {
		cr.total = -1
	} else {
		if cr.total, err = parseDigits(tot); err != nil {
			return bad("total: " + err.Error())
		}
		if cr.total <= cr.end {
			return bad("range beyond total")
		}
	}
	return cr, nil
}

// parseDigits accepts 1 to 18 ASCII digits (no sign, no spaces), so the
// value fits an int64 with room to add one.
func parseDigits(s string) (int64, error) {
	if len(s) == 0 || len(s) > 18 {
		return 0, fmt.Errorf("want 1 to 18 digits")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a decimal number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
