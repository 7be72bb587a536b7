//go:build notext

package main

import "strings"

const engine = "standard library only"

var inputs = []string{"de-CH", "fr-CA", "ja-JP", "pt-BR"}

// process is the backup build's reduced text handling: tags are checked
// for shape only, and nothing is normalized.
func process(n int) string {
	in := inputs[n%len(inputs)]
	lang, region, ok := strings.Cut(in, "-")
	if !ok || len(lang) != 2 || len(region) != 2 {
		return ""
	}
	return strings.ToLower(lang) + "-" + strings.ToUpper(region) + " (not normalized)"
}
