// Command control uses a current golang.org/x/text: the control fixture,
// expected to have no module advisories (the toolchain's own standard
// library may have some).
package main

import (
	"fmt"

	"golang.org/x/text/language"
)

func main() {
	tag, err := language.Parse("fr-CA")
	fmt.Println(tag, err)
}
