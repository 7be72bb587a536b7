package tufclient

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	maxFakeTimeLength = 64                         // bytes of a FAKETIME value
	maxFakeOffset     = 200 * 365 * 24 * time.Hour // |relative offset|
	fakeTimeLayout    = "2006-01-02 15:04:05"      // libfaketime's absolute form
)

// fakeUnits maps an offset unit to seconds; a year is 365 days, as in
// libfaketime.
var fakeUnits = map[byte]float64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'y': 365 * 86400}

// ParseFakeTime interprets a FAKETIME value as libfaketime does, relative
// to now, and returns the time the client should take as the present:
//
//	""                      now (no faked time)
//	"+18d", "-3600", "+1,5h" now plus an offset; units s (default), m, h, d,
//	                        y (365 days); '.' or ',' before a fraction;
//	                        |offset| ≤ 200 years
//	"@2024-05-01 10:00:00"  start-at time, local time zone
//	"2024-05-01 10:00:00"   frozen time, local time zone
//
// Clock-rate modifiers ("x2", "i1.0") are refused with ErrInvalidFakeTime.
func ParseFakeTime(spec string, now time.Time) (time.Time, error) {
	if len(spec) > maxFakeTimeLength {
		return time.Time{}, fmt.Errorf("%w: %d bytes; at most %d", ErrInvalidFakeTime, len(spec), maxFakeTimeLength)
	}
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		return now, nil
	case s[0] == '+' || s[0] == '-':
		fields := strings.Fields(s)
		if len(fields) != 1 {
			return time.Time{}, fmt.Errorf("%w: %q: speed (x) and interval (i) modifiers are not supported", ErrInvalidFakeTime, spec)
		}
		d, err := parseFakeOffset(fields[0])
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %q: %v", ErrInvalidFakeTime, spec, err)
		}
		return now.Add(d), nil
	case s[0] == '@':
		s = strings.TrimSpace(s[1:])
	}
	t, err := time.ParseInLocation(fakeTimeLayout, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q: want +N[smhdy], -N[smhdy], @YYYY-MM-DD HH:MM:SS or YYYY-MM-DD HH:MM:SS", ErrInvalidFakeTime, spec)
	}
	return t, nil
}

// parseFakeOffset parses "+N[.F][unit]" or "-N[.F][unit]".
func parseFakeOffset(s string) (time.Duration, error) {
	neg, body := s[0] == '-', s[1:]
	unit := 1.0
	if n := len(body); n > 0 {
		if u, ok := fakeUnits[body[n-1]]; ok {
			unit, body = u, body[:n-1]
		}
	}
	marks := 0
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c >= '0' && c <= '9':
		case (c == '.' || c == ',') && i > 0 && i < len(body)-1 && marks == 0:
			marks++
		default:
			return 0, fmt.Errorf("offset %q: want digits, at most one decimal mark, and a unit of s, m, h, d or y", s)
		}
	}
	if body == "" {
		return 0, fmt.Errorf("offset %q has no number", s)
	}
	v, err := strconv.ParseFloat(strings.Replace(body, ",", ".", 1), 64)
	if err != nil {
		return 0, fmt.Errorf("offset %q: %v", s, err)
	}
	secs := v * unit
	if math.IsNaN(secs) || secs > maxFakeOffset.Seconds() {
		return 0, fmt.Errorf("offset %q is more than %v", s, maxFakeOffset)
	}
	d := time.Duration(math.Round(secs * float64(time.Second)))
	if neg {
		d = -d
	}
	return d, nil
}
