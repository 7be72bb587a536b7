//go:build !notext

package main

import (
	"fmt"

	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

const engine = "golang.org/x/text"

var inputs = []string{"de-CH", "fr-CA", "ja-JP", "pt-BR"}

// process normalizes a string and parses a language tag with
// golang.org/x/text (norm.Form.String is what GO-2026-5970 names).
func process(n int) string {
	tag, err := language.Parse(inputs[n%len(inputs)])
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s %q", tag, norm.NFC.String("e\u0301"))
}
