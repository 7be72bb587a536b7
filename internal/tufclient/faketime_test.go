package tufclient

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseFakeTime(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	local := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for spec, want := range map[string]time.Time{
		"":                      now,
		"+18d":                  now.Add(18 * 24 * time.Hour),
		"-3600":                 now.Add(-time.Hour),
		"+90s":                  now.Add(90 * time.Second),
		"+1,5h":                 now.Add(90 * time.Minute),
		"+0.5m":                 now.Add(30 * time.Second),
		"+1y":                   now.Add(365 * 24 * time.Hour),
		"  +2d  ":               now.Add(48 * time.Hour),
		"@2024-05-01 10:00:00":  local("2024-05-01 10:00:00"),
		"2024-05-01 10:00:00":   local("2024-05-01 10:00:00"),
		"@ 2030-01-02 03:04:05": local("2030-01-02 03:04:05"),
	} {
		got, err := ParseFakeTime(spec, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseFakeTime(%q) = %v, %v; want %v", spec, got, err, want)
		}
	}
	for _, spec := range []string{"+", "-d", "+1.d", "+.5d", "+1..5d", "+1e9", "+NaN", "+Inf", "+1d x2", "+1w",
		"+300y", "tomorrow", "2024-05-01", "@", "+1,5,5h", string(make([]byte, 65))} {
		if _, err := ParseFakeTime(spec, now); !errors.Is(err, ErrInvalidFakeTime) {
			t.Errorf("ParseFakeTime(%q) = %v, want ErrInvalidFakeTime", spec, err)
		}
	}
}

func FuzzParseFakeTime(f *testing.F) {
	for _, s := range []string{"", "+18d", "-3600", "+1,5h", "@2024-05-01 10:00:00", "2024-05-01 10:00:00", "+1d x2"} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := ParseFakeTime(spec, now)
		if err != nil {
			return
		}
		if s := strings.TrimSpace(spec); s != "" && (s[0] == '+' || s[0] == '-') {
			if d := got.Sub(now); d > maxFakeOffset+time.Second || d < -maxFakeOffset-time.Second {
				t.Fatalf("ParseFakeTime(%q) moved the clock by %v, beyond %v", spec, d, maxFakeOffset)
			}
		}
		if len(spec) > maxFakeTimeLength {
			t.Fatalf("accepted %d bytes", len(spec))
		}
	})
}
