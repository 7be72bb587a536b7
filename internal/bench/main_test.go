package bench_test

import (
	"flag"
	"os"
	"testing"
)

var figuresFlag = flag.Bool("figures", false, "run TestFigures: all measurements at full size, printed as a table")

// figuresOn says whether the full-size figures were asked for.
func figuresOn() bool { return *figuresFlag || os.Getenv("ZTOTA_FIGURES") == "1" }

// hardwareID is the board every bench device claims.
const hardwareID = "bench-board"

func fatalIf(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
