package vulnfixture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Names of the OSV snapshots the fixtures were checked against; the data
// files are <name>.zip in the directory FindOSVData returns.
const (
	Snapshot20250101 = "Go-2025-01-01"
	Snapshot20250701 = "Go-2025-07-01"
	Snapshot20260821 = "Go-2026-08-21"
)

// Snapshots returns the snapshot names, oldest first.
func Snapshots() []string {
	return []string{Snapshot20250101, Snapshot20250701, Snapshot20260821}
}

// expected holds, per program and snapshot, the advisory ids govulncheck
// v1.9.0 reported for a linux/amd64 build with go1.26.8 (module-level
// scan). FIXTURES.md shows the same table. Ids tied to the standard
// library would follow the toolchain; this toolchain had none in any
// snapshot.
var expected = map[string]map[string][]string{
	"control": {
		Snapshot20250101: {},
		Snapshot20250701: {},
		Snapshot20260821: {},
	},
	"cryptoold": {
		Snapshot20250101: {"GO-2021-0356", "GO-2022-0968", "GO-2023-2402", "GO-2024-3321"},
		Snapshot20250701: {"GO-2021-0356", "GO-2022-0968", "GO-2023-2402", "GO-2024-3321", "GO-2025-3487"},
		Snapshot20260821: {"GO-2021-0356", "GO-2022-0968", "GO-2023-2402", "GO-2024-3321", "GO-2025-3487",
			"GO-2025-4116", "GO-2025-4134", "GO-2025-4135", "GO-2026-5005", "GO-2026-5006", "GO-2026-5013",
			"GO-2026-5014", "GO-2026-5015", "GO-2026-5016", "GO-2026-5017", "GO-2026-5018", "GO-2026-5019",
			"GO-2026-5020", "GO-2026-5021", "GO-2026-5023", "GO-2026-5033", "GO-2026-5932"},
	},
	"netold": {
		Snapshot20250101: {"GO-2021-0113", "GO-2022-0288", "GO-2022-0969", "GO-2022-1059", "GO-2022-1144",
			"GO-2023-1571", "GO-2023-1988", "GO-2023-2102", "GO-2024-2687", "GO-2024-3333"},
		Snapshot20250701: {"GO-2021-0113", "GO-2022-0288", "GO-2022-0969", "GO-2022-1059", "GO-2022-1144",
			"GO-2023-1571", "GO-2023-1988", "GO-2023-2102", "GO-2024-2687", "GO-2024-3333", "GO-2025-3503",
			"GO-2025-3595"},
		Snapshot20260821: {"GO-2021-0113", "GO-2022-0288", "GO-2022-0969", "GO-2022-1059", "GO-2022-1144",
			"GO-2023-1571", "GO-2023-1988", "GO-2023-2102", "GO-2024-2687", "GO-2024-3333", "GO-2025-3503",
			"GO-2025-3595", "GO-2026-4440", "GO-2026-4441", "GO-2026-4918", "GO-2026-5025", "GO-2026-5026",
			"GO-2026-5027", "GO-2026-5028", "GO-2026-5029", "GO-2026-5030", "GO-2026-5942", "GO-2026-5970"},
	},
	"recent": {
		Snapshot20250101: {},
		Snapshot20250701: {"GO-2025-3487", "GO-2025-3488", "GO-2025-3503", "GO-2025-3553", "GO-2025-3595"},
		Snapshot20260821: {"GO-2025-3487", "GO-2025-3488", "GO-2025-3503", "GO-2025-3553", "GO-2025-3595",
			"GO-2025-4116", "GO-2025-4134", "GO-2025-4135", "GO-2026-4440", "GO-2026-4441", "GO-2026-4918",
			"GO-2026-5005", "GO-2026-5006", "GO-2026-5013", "GO-2026-5014", "GO-2026-5015", "GO-2026-5016",
			"GO-2026-5017", "GO-2026-5018", "GO-2026-5019", "GO-2026-5020", "GO-2026-5021", "GO-2026-5023",
			"GO-2026-5025", "GO-2026-5026", "GO-2026-5027", "GO-2026-5028", "GO-2026-5029", "GO-2026-5030",
			"GO-2026-5033", "GO-2026-5932", "GO-2026-5942"},
	},
	"textnew": {
		Snapshot20250101: {},
		Snapshot20250701: {},
		Snapshot20260821: {"GO-2026-5970"},
	},
	"textold": {
		Snapshot20250101: {"GO-2021-0113", "GO-2022-1059"},
		Snapshot20250701: {"GO-2021-0113", "GO-2022-1059"},
		Snapshot20260821: {"GO-2021-0113", "GO-2022-1059", "GO-2026-5970"},
	},
}

// expectedSymbol holds, per program and snapshot, the advisory ids
// govulncheck v1.9.0 reported at symbol level (-scan symbol, its default:
// findings whose trace names a vulnerable function linked into the
// binary) for the same builds. FIXTURES.md shows the same table.
var expectedSymbol = map[string]map[string][]string{
	"control": {
		Snapshot20250101: {},
		Snapshot20250701: {},
		Snapshot20260821: {},
	},
	"cryptoold": {
		Snapshot20250101: {},
		Snapshot20250701: {},
		Snapshot20260821: {},
	},
	"netold": {
		Snapshot20250101: {"GO-2022-0288", "GO-2022-0969", "GO-2022-1144", "GO-2023-1571", "GO-2023-2102",
			"GO-2024-2687", "GO-2024-3333"},
		Snapshot20250701: {"GO-2022-0288", "GO-2022-0969", "GO-2022-1144", "GO-2023-1571", "GO-2023-2102",
			"GO-2024-2687", "GO-2024-3333", "GO-2025-3595"},
		Snapshot20260821: {"GO-2022-0288", "GO-2022-0969", "GO-2022-1144", "GO-2023-1571", "GO-2023-2102",
			"GO-2024-2687", "GO-2024-3333", "GO-2025-3595", "GO-2026-4440", "GO-2026-4441", "GO-2026-5025",
			"GO-2026-5027", "GO-2026-5028", "GO-2026-5029", "GO-2026-5030"},
	},
	"recent": {
		Snapshot20250101: {},
		Snapshot20250701: {"GO-2025-3553", "GO-2025-3595"},
		Snapshot20260821: {"GO-2025-3553", "GO-2025-3595", "GO-2026-4440", "GO-2026-4441", "GO-2026-5025",
			"GO-2026-5027", "GO-2026-5028", "GO-2026-5029", "GO-2026-5030"},
	},
	"textnew": {
		Snapshot20250101: {},
		Snapshot20250701: {},
		Snapshot20260821: {"GO-2026-5970"},
	},
	"textold": {
		Snapshot20250101: {"GO-2021-0113"},
		Snapshot20250701: {"GO-2021-0113"},
		Snapshot20260821: {"GO-2021-0113"},
	},
}

// ExpectedSymbol is Expected for govulncheck's symbol-level findings.
func ExpectedSymbol(program, snapshot string) (ids []string, ok bool) {
	ids, ok = expectedSymbol[program][snapshot]
	if !ok {
		return nil, false
	}
	return append([]string{}, ids...), true
}

// Expected returns the advisory ids govulncheck reported for the named
// program against the named snapshot when the fixtures were made (see
// FIXTURES.md), sorted; ok is false for an unknown program or snapshot.
// The result is a fresh slice, never nil when ok.
func Expected(program, snapshot string) (ids []string, ok bool) {
	ids, ok = expected[program][snapshot]
	if !ok {
		return nil, false
	}
	return append([]string{}, ids...), true
}

// FindOSVData returns the directory holding the OSV snapshots
// (<name>.zip): shared/data/osv beside the repository root, the repository
// root being the nearest directory at or above the working directory that
// holds a go.mod.
func FindOSVData() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("vulnfixture: find OSV data: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			data := filepath.Join(filepath.Dir(dir), "shared", "data", "osv")
			if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
				return "", fmt.Errorf("vulnfixture: OSV data not found at %s", data)
			}
			return data, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("vulnfixture: find OSV data: no go.mod at or above " + wd)
		}
	}
}
