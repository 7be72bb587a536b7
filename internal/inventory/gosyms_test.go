package inventory

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

// TestGoSymbolsListed reads the function table of the test program: its
// own, library and standard-library functions are filed by package path,
// methods as Type.Method, main under the main package's path.
func TestGoSymbolsListed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the host builds no ELF binary")
	}
	inv, err := FromFile(testBinary(t, "", ""), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	syms := inv.Symbols[LocationArtifact]
	if syms == nil {
		t.Fatalf("no symbols for the binary; notes %q", inv.Notes)
	}
	for _, w := range [][2]string{
		{"example.com/app", "main"},
		{"golang.org/x/sync/errgroup", "Group.Go"},
		{"golang.org/x/sync/errgroup", "Group.Wait"},
		{"golang.org/x/text/language", "Tag.String"},
		{"fmt", "Println"},
		{"runtime", "main"},
	} {
		if !syms.Has(w[0], w[1]) {
			t.Errorf("symbol %s.%s not listed", w[0], w[1])
		}
	}
	if syms.HasPackage("golang.org/x/text/unicode/norm") && syms.Has("golang.org/x/text/unicode/norm", "NotLinked") {
		t.Error("an unknown symbol is listed")
	}
	if n := syms.Count(); n < 1000 || n > 50000 {
		t.Errorf("%d symbols, want a Go program's 1,000..50,000", n)
	}
}

// TestGoSymbolsStrippedSymbolTable removes the ELF symbol table (as
// `strip` or -ldflags=-s does): without go:func.* the inline trees cannot
// be read, so the binary is accepted without symbols and a note says every
// finding counts as present.
func TestGoSymbolsStrippedSymbolTable(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the host builds no ELF binary")
	}
	b := readFile(t, testBinary(t, "", ""))
	b = patchSectionHeader(t, b, ".symtab", func(sh []byte, order binary.ByteOrder) {
		order.PutUint32(sh[4:], uint32(elf.SHT_NULL)) // sh_type
	})
	inv, err := inventoryOf(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Symbols[LocationArtifact] != nil {
		t.Error("symbols listed for a binary without a symbol table")
	}
	if !hasNote(inv.Notes, "symbol table stripped", "counts as present") {
		t.Errorf("no note about the stripped symbol table in %q", inv.Notes)
	}
}

// TestGoSymbolsHostileTables performs corruptions of a real binary's
// function table — a huge function count, function and name offsets out
// of range, a truncated section, a huge inline tree — and checks each is
// refused with ErrSymbolTable (and ErrMalformed) rather than read out of
// bounds, allocated without bound or accepted with fewer symbols.
func TestGoSymbolsHostileTables(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the host builds no ELF binary")
	}
	orig := readFile(t, testBinary(t, "", ""))
	f, err := elf.NewFile(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	sec := f.Section(".gopclntab")
	off := int(sec.Offset)
	order := f.ByteOrder
	ptr := int(orig[off+7])
	word := func(b []byte, i int) []byte { return b[off+8+i*ptr:] }
	putWord := func(b []byte, i int, v uint64) {
		if ptr == 4 {
			order.PutUint32(word(b, i), uint32(v))
		} else {
			order.PutUint64(word(b, i), v)
		}
	}
	getWord := func(b []byte, i int) uint64 {
		if ptr == 4 {
			return uint64(order.Uint32(word(b, i)))
		}
		return order.Uint64(word(b, i))
	}
	functab := off + int(getWord(orig, 7))
	firstFunc := functab + int(order.Uint32(orig[functab+4:]))
	cases := []struct {
		name   string
		patch  func(b []byte) []byte
		phrase string
	}{
		{"huge function count", func(b []byte) []byte { putWord(b, 0, 1<<40); return b }, "functions (at most"},
		{"function count past the table", func(b []byte) []byte { putWord(b, 0, MaxGoFuncs); return b }, "function table truncated"},
		{"function table offset out of range", func(b []byte) []byte { putWord(b, 7, 1<<40); return b }, "offset"},
		{"function record out of range", func(b []byte) []byte {
			order.PutUint32(b[functab+4:], 0xfffffff0)
			return b
		}, "out of range"},
		{"name offset out of range", func(b []byte) []byte {
			order.PutUint32(b[firstFunc+4:], 0x7ffffff0)
			return b
		}, "name offset"},
		{"truncated section", func(b []byte) []byte {
			return patchSectionHeader(t, b, ".gopclntab", func(sh []byte, order binary.ByteOrder) {
				if f.Class == elf.ELFCLASS64 {
					order.PutUint64(sh[32:], 4096) // sh_size
				} else {
					order.PutUint32(sh[20:], 4096)
				}
			})
		}, ""},
		{"huge pcdata count", func(b []byte) []byte {
			order.PutUint32(b[firstFunc+28:], 1<<30)
			return b
		}, "pcdata tables"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.patch(bytes.Clone(orig))
			inv, err := inventoryOf(b, Limits{})
			if !errors.Is(err, ErrSymbolTable) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v (inventory %v), want ErrSymbolTable and ErrMalformed", err, inv != nil)
			}
			if !strings.Contains(err.Error(), c.phrase) {
				t.Errorf("err = %v, want it to say %q", err, c.phrase)
			}
		})
	}
}

// TestGoSymbolsSynthetic reads a hand-built Go 1.20 table: functions and
// inlined calls are listed, and a forged inline count is refused.
func TestGoSymbolsSynthetic(t *testing.T) {
	tab, gofunc := synthPCLN([]string{"example.com/m/p.F", "example.com/m/p.(*T).M", "main.main"},
		[]string{"example.com/m/q.Inlined", "example.com/m/p.T.Value"}, 2)
	p, err := parsePCLN(tab, binary.LittleEndian)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := p.symbols(goFuncData{r: bytes.NewReader(gofunc), size: int64(len(gofunc))}, "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]string{{"example.com/m/p", "F"}, {"example.com/m/p", "T.M"}, {"example.com/m", "main"},
		{"example.com/m/q", "Inlined"}, {"example.com/m/p", "T.Value"}} {
		if !syms.Has(w[0], w[1]) {
			t.Errorf("%s.%s not listed in %v", w[0], w[1], syms.Packages)
		}
	}
	// An inline tree claiming more entries than go:func.* holds.
	tab, gofunc = synthPCLN([]string{"a.F"}, []string{"b.G"}, 5000)
	p, _ = parsePCLN(tab, binary.LittleEndian)
	if _, err := p.symbols(goFuncData{r: bytes.NewReader(gofunc), size: int64(len(gofunc))}, ""); !errors.Is(err, ErrSymbolTable) {
		t.Errorf("forged inline count: err = %v, want ErrSymbolTable", err)
	}
}

// synthPCLN builds a little-endian, 64-bit Go 1.20 pclntab whose first
// function carries an inline tree of the inlined names, with an inline
// index table whose largest value is inlCount-1, and its go:func.* data.
func synthPCLN(funcs, inlined []string, inlCount int) (tab, gofunc []byte) {
	le := binary.LittleEndian
	const hdr = 8 + 8*8
	var names []byte
	nameOff := map[string]uint32{}
	for _, n := range append(append([]string{}, funcs...), inlined...) {
		if _, ok := nameOff[n]; !ok {
			nameOff[n] = uint32(len(names))
			names = append(append(names, n...), 0)
		}
	}
	// pctab: a placeholder byte, then one step from -1 to inlCount-1.
	pctab := []byte{0}
	pcOff := uint32(len(pctab))
	pctab = binary.AppendUvarint(pctab, uint64(inlCount)<<1) // zig-zag of +inlCount
	pctab = append(pctab, 1, 0)
	// functab then the _func records.
	nf := len(funcs)
	ftHead := (2*nf + 1) * 4
	const rec = 44 + 3*4 + 4*4
	ft := make([]byte, ftHead+nf*rec)
	for i, n := range funcs {
		fo := ftHead + i*rec
		le.PutUint32(ft[i*8:], uint32(i*16))
		le.PutUint32(ft[i*8+4:], uint32(fo))
		fn := ft[fo:]
		le.PutUint32(fn[4:], nameOff[n])
		le.PutUint32(fn[28:], 3) // npcdata
		fn[43] = 4               // nfuncdata
		tree := ^uint32(0)
		if i == 0 && len(inlined) > 0 {
			le.PutUint32(fn[44+2*4:], pcOff)
			tree = 0
		}
		for j := 0; j < 4; j++ {
			le.PutUint32(fn[44+12+j*4:], ^uint32(0))
		}
		le.PutUint32(fn[44+12+3*4:], tree)
	}
	le.PutUint32(ft[nf*8:], uint32(nf*16))
	tab = make([]byte, hdr)
	le.PutUint32(tab, pclnGo120)
	tab[6], tab[7] = 1, 8
	words := []uint64{uint64(nf), 0, 0, hdr, 0, 0, uint64(hdr + len(names)), uint64(hdr + len(names) + len(pctab))}
	for i, w := range words {
		le.PutUint64(tab[8+8*i:], w)
	}
	tab = append(append(append(tab, names...), pctab...), ft...)
	for _, n := range inlined {
		e := make([]byte, 16)
		le.PutUint32(e[4:], nameOff[n])
		gofunc = append(gofunc, e...)
	}
	return tab, gofunc
}

// patchSectionHeader applies patch to the header of the named section.
func patchSectionHeader(t testing.TB, b []byte, name string, patch func(sh []byte, order binary.ByteOrder)) []byte {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var shoff, shentsize uint64
	if f.Class == elf.ELFCLASS64 {
		shoff, shentsize = f.ByteOrder.Uint64(b[0x28:]), uint64(f.ByteOrder.Uint16(b[0x3a:]))
	} else {
		shoff, shentsize = uint64(f.ByteOrder.Uint32(b[0x20:])), uint64(f.ByteOrder.Uint16(b[0x2e:]))
	}
	for i, s := range f.Sections {
		if s.Name == name {
			at := shoff + uint64(i)*shentsize
			patch(b[at:at+shentsize], f.ByteOrder)
			return b
		}
	}
	t.Fatalf("no section %s", name)
	return nil
}

// FuzzGoSymbols feeds arbitrary function tables and go:func.* data to the
// reader: it must return symbols or an error, within its bounds, never
// panic (the recover in readGoSymbols is not in this path).
func FuzzGoSymbols(f *testing.F) {
	tab, gofunc := synthPCLN([]string{"a/b.F", "a/b.(*T).M"}, []string{"c.G"}, 1)
	f.Add(tab, gofunc)
	tab2, gofunc2 := synthPCLN([]string{"main.main"}, []string{"x.Y", "x.Z"}, 3)
	f.Add(tab2, gofunc2)
	f.Add(tab[:40], []byte{})
	f.Fuzz(func(t *testing.T, tab, gofunc []byte) {
		p, err := parsePCLN(tab, binary.LittleEndian)
		if err != nil {
			var none errNoSymbolInfo
			if !errors.Is(err, ErrSymbolTable) && !errors.As(err, &none) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		syms, err := p.symbols(goFuncData{r: bytes.NewReader(gofunc), size: int64(len(gofunc))}, "m")
		if err != nil {
			if !errors.Is(err, ErrSymbolTable) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if syms.Count() > p.nfunc*(1+MaxGoInline) {
			t.Fatalf("%d symbols from %d functions", syms.Count(), p.nfunc)
		}
	})
}

// TestGoSymbolsOfReplacedModule: a module replaced by a module of another
// path is matched under the replacement's path, so its packages, named in
// the binary by the original import path, are listed under that path too
// (otherwise an advisory for the replacement would be wrongly module-only).
func TestGoSymbolsOfReplacedModule(t *testing.T) {
	syms := &vulnref.Symbols{Packages: map[string]map[string]struct{}{
		"example.com/orig/p":   {"F": {}},
		"example.com/orig":     {"G": {}},
		"example.com/original": {"H": {}},
	}}
	bi := &debug.BuildInfo{Deps: []*debug.Module{
		{Path: "example.com/orig", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.0.1"}},
		{Path: "example.com/local", Version: "v1.0.0", Replace: &debug.Module{Path: "./local"}},
	}}
	aliasReplacedPackages(syms, bi)
	for _, w := range [][2]string{{"example.com/fork/p", "F"}, {"example.com/fork", "G"}, {"example.com/orig/p", "F"}} {
		if !syms.Has(w[0], w[1]) {
			t.Errorf("%s.%s not listed", w[0], w[1])
		}
	}
	if syms.HasPackage("example.com/forkinal") || len(syms.Packages) != 5 {
		t.Errorf("packages %v: a path that only shares a prefix was aliased", syms.Packages)
	}
}

// TestGoSymbolsBudgetPerArtifact: a bundle whose Go binaries hold more
// symbols in all than the budget keeps the first binaries' symbols and
// reads the rest without symbol-level precision (noted), instead of
// holding every table in memory.
func TestGoSymbolsBudgetPerArtifact(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the host builds no ELF binary")
	}
	bin := readFile(t, testBinary(t, "", ""))
	inv, err := inventoryOf(bin, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := inv.Symbols[LocationArtifact].Count()
	defer func(v int) { maxInventorySymbols = v }(maxInventorySymbols)
	maxInventorySymbols = n + n/2
	inv, err = inventoryOf(makeTar(t, true, entry{name: "bin/a", body: bin}, entry{name: "bin/b", body: bin}), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Symbols["bin/a"] == nil || inv.Symbols["bin/b"] != nil {
		t.Errorf("symbols kept for %v, want bin/a only", len(inv.Symbols))
	}
	if !hasNote(inv.Notes, "bin/b", "symbols in all", "counts as present") {
		t.Errorf("no note about the budget in %q", inv.Notes)
	}
}

// TestGoSymbolsMachOAndPE reads the function tables of the test program
// cross-compiled for windows/amd64 (PE) and darwin/arm64 (Mach-O).
func TestGoSymbolsMachOAndPE(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling the test program is slow on a cold build cache; skipped in -short mode")
	}
	for _, target := range [][2]string{{"windows", "amd64"}, {"darwin", "arm64"}} {
		t.Run(target[0], func(t *testing.T) {
			inv, err := FromFile(testBinary(t, target[0], target[1]), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			syms := inv.Symbols[LocationArtifact]
			if syms == nil {
				t.Fatalf("no symbols; notes %q", inv.Notes)
			}
			for _, w := range [][2]string{{"example.com/app", "main"}, {"golang.org/x/sync/errgroup", "Group.Go"},
				{"golang.org/x/text/language", "Tag.String"}, {"fmt", "Println"}} {
				if !syms.Has(w[0], w[1]) {
					t.Errorf("symbol %s.%s not listed", w[0], w[1])
				}
			}
		})
	}
}
