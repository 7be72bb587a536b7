package bundle

import (
	"strings"
	"unicode/utf8"
)

// nameProblem reports why s cannot be an entry name or link target, or "".
func nameProblem(s string) string {
	switch {
	case s == "":
		return "empty name"
	case !utf8.ValidString(s):
		return "name is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "name contains NUL"
	case strings.IndexByte(s, '\\') >= 0:
		return "name contains a backslash"
	case strings.HasPrefix(s, "/"):
		return "absolute path"
	}
	return ""
}

// cleanName validates an entry name and returns its components, without
// "" and "." components. An empty result names the destination itself.
// It returns a non-nil error for an unsafe or oversized name.
func cleanName(raw string, lim Limits) ([]string, error) {
	if len(raw) > lim.MaxPathLen {
		return nil, &LimitError{Limit: "MaxPathLen", Max: int64(lim.MaxPathLen), Name: truncate(raw)}
	}
	if p := nameProblem(raw); p != "" {
		return nil, unsafeEntry(raw, p)
	}
	var parts []string
	for _, c := range strings.Split(raw, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, unsafeEntry(raw, "'..' component")
		}
		parts = append(parts, c)
	}
	if len(parts) > lim.MaxDepth {
		return nil, &LimitError{Limit: "MaxDepth", Max: int64(lim.MaxDepth), Name: raw}
	}
	return parts, nil
}

// symlinkProblem reports why a symlink at path parts may not point at
// target, or "". A target must be relative and of the form
// ("..")* name*: its leading ".." walk up through directories this
// extraction created (symlinks are never parents, see Extract), so
// counting them against the link's depth proves the target stays inside.
// A ".." after a name could climb back out through a symlink and is
// refused.
func symlinkProblem(parts []string, target string, lim Limits) string {
	if len(target) > lim.MaxPathLen {
		return "symlink target longer than MaxPathLen"
	}
	if p := nameProblem(target); p != "" {
		if p == "absolute path" {
			return "symlink target is absolute"
		}
		return "symlink target: " + p
	}
	ups, names := 0, 0
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if names > 0 {
				return "symlink target has '..' after a name"
			}
			ups++
		default:
			names++
		}
	}
	if ups > len(parts)-1 {
		return "symlink target escapes the bundle"
	}
	return ""
}

func truncate(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
