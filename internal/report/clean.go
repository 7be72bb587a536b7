package report

import (
	"strings"
	"unicode/utf8"
)

// Terminal reports whether s ends an update attempt: committed,
// rolled-back, refused or failed. A device never drops a terminal report.
func (s State) Terminal() bool {
	switch s {
	case StateCommitted, StateRolledBack, StateRefused, StateFailed:
		return true
	}
	return false
}

// Clean makes s fit a text field of at most max bytes: terminal escape
// sequences (CSI such as ANSI colours, OSC, and two-byte escapes) are
// removed, every other control character is dropped (newline and tab are
// kept when multiline, else turned into spaces), invalid UTF-8 becomes
// U+FFFD, and the result is cut at a character boundary, ending in "…"
// when something was cut. Clean(s) always passes the field's validation.
func Clean(s string, max int, multiline bool) string {
	if max <= 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(min(len(s), max))
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1b { // ESC
			i = skipEscape(s, i)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '\n' || r == '\t':
			if !multiline {
				r = ' '
			}
		case r == '\r':
			continue
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			continue // C0 and C1 controls
		}
		b.WriteRune(r) // utf8.RuneError for invalid bytes: written as U+FFFD
	}
	out := b.String()
	if len(out) <= max {
		return out
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	if cut < 0 {
		cut = max
	}
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	if cut+len(ellipsis) <= max {
		return out[:cut] + ellipsis
	}
	return out[:cut]
}

// skipEscape returns the index just after the escape sequence starting at
// s[i] (an ESC byte).
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameters and intermediates 0x20-0x3f, final 0x40-0x7e
		i++
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x3f {
			i++
		}
		if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
			i++
		}
		return i
	case ']', 'P', '_', '^', 'X': // OSC, DCS, APC, PM, SOS: up to BEL or ESC \
		i++
		for i < len(s) {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			i++
		}
		return i
	}
	if s[i] >= 0x20 && s[i] <= 0x7e { // two-byte escape such as ESC c
		return i + 1
	}
	return i
}
