// Command textnew normalizes and parses text with golang.org/x/text v0.21.0,
// which was free of known advisories until mid 2026.
package main

import (
	"fmt"

	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

func main() {
	tag, err := language.Parse("de-CH")
	fmt.Println(tag, err, norm.NFC.String("e\u0301"))
}
