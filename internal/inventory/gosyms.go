package inventory

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"debug/macho"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/ztota/ztota/internal/vulnref"
)

// Bounds on a Go binary's function table. A table over any of them is
// refused with an error wrapping ErrSymbolTable: a real program stays far
// below each.
const (
	// MaxGoFuncs bounds the functions the table may declare.
	MaxGoFuncs = 2_000_000
	// MaxGoSymbols bounds the distinct package.symbol names of one binary.
	MaxGoSymbols = 2_000_000
	// MaxInventorySymbols bounds the symbols kept for all the Go binaries
	// of one artifact (about 100 bytes of memory each); binaries past it
	// are matched without symbol-level precision.
	MaxInventorySymbols = 1_000_000
	// MaxGoSymbolName bounds the length of one function name.
	MaxGoSymbolName = 64 << 10
	// MaxGoInline bounds the inlined calls of one function.
	MaxGoInline = 1 << 16
	// MaxGoPCData bounds the pcdata tables of one function.
	MaxGoPCData = 1 << 10
	// maxGoTableWork bounds the bytes of pc-value tables decoded for one
	// binary (tables may overlap, so this is not the table's size).
	maxGoTableWork = 1 << 30
)

// ErrSymbolTable reports a Go function table that is corrupt or over a
// bound. The inventory keeps the binary's modules; matching counts every
// finding of the binary as present.
var ErrSymbolTable = errors.New("inventory: unreadable Go function table")

// pclntab magics of the formats read here.
const (
	pclnGo118 = 0xfffffff0 // Go 1.18 and 1.19
	pclnGo120 = 0xfffffff1 // Go 1.20 and later
)

// Indexes of the runtime's pcdata and funcdata tables (cmd/internal/objabi).
const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
)

// errNoSymbolInfo says the binary has no function table this reader can
// use (another executable format, a stripped symbol table, a toolchain
// older than Go 1.18): not an error of the binary, but no symbol-level
// precision either.
type errNoSymbolInfo struct{ why string }

func (e errNoSymbolInfo) Error() string { return e.why }

// readGoSymbols reads the functions linked into the Go executable r (ELF,
// Mach-O or PE),
// inlined ones included, as govulncheck's binary mode does: every function
// of the pclntab and every entry of each function's inline tree, named
// package path and symbol ("Type.Method" for methods, pointer receivers
// without "(*...)"). Functions of package main are filed under the main
// package's import path.
//
// It returns errNoSymbolInfo when the binary has no usable table, and an
// error wrapping ErrSymbolTable when the table is corrupt or over a bound.
func readGoSymbols(r io.ReaderAt, bi *debug.BuildInfo) (syms *vulnref.Symbols, err error) {
	defer func() {
		if p := recover(); p != nil {
			syms, err = nil, fmt.Errorf("%w: reader failed: %v", ErrSymbolTable, p)
		}
	}()
	var head [4]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, errNoSymbolInfo{"executable too short"}
	}
	// No table read is larger than the executable itself, whatever its
	// headers claim.
	lim := DefaultLimits().MaxEntryBytes
	if sz, ok := r.(interface{ Size() int64 }); ok && sz.Size() < lim {
		lim = sz.Size()
	}
	var exe goExe
	switch {
	case bytes.Equal(head[:], []byte{0x7f, 'E', 'L', 'F'}):
		exe, err = openELF(r, lim)
	case bytes.HasPrefix(head[:], []byte("MZ")):
		exe, err = openPE(r, lim)
	default:
		exe, err = openMachO(r, lim)
	}
	if err != nil {
		return nil, err
	}
	data, err := exe.pclntab()
	if err != nil {
		return nil, err
	}
	t, err := parsePCLN(data, exe.order())
	if err != nil {
		return nil, err
	}
	// The inline trees live in the go:func.* symbol's data; a binary whose
	// symbol table was stripped cannot be read for them, and without them
	// inlined vulnerable code would go unseen, so no precision is claimed.
	name := "go:func.*"
	if t.version == pclnGo118 {
		name = "go.func.*"
	}
	gofunc, err := exe.symbolData(name)
	if err != nil {
		return nil, err
	}
	mainPath := ""
	if bi != nil {
		mainPath = bi.Path
	}
	return t.symbols(gofunc, mainPath)
}

// goFuncData is where the go:func.* data lies in the file.
type goFuncData struct {
	r    io.ReaderAt
	off  int64 // file offset of the symbol's address
	size int64 // bytes readable from off within its segment
}

// goExe is what the reader needs from an executable format.
type goExe interface {
	order() binary.ByteOrder
	// pclntab returns the function table's bytes, or errNoSymbolInfo.
	pclntab() ([]byte, error)
	// symbolData locates the named symbol's data, or errNoSymbolInfo
	// when the symbol table was stripped.
	symbolData(name string) (goFuncData, error)
}

var errStripped = errNoSymbolInfo{"symbol table stripped: inlined functions cannot be listed"}

// readSection reads n bytes at off of a section, at most lim.
func readSection(r io.ReaderAt, off, n uint64, lim int64, what string) ([]byte, error) {
	if n > uint64(lim) {
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrSymbolTable, what, n)
	}
	b := make([]byte, n)
	if off > 1<<62 {
		return nil, fmt.Errorf("%w: %s offset %d", ErrSymbolTable, what, off)
	}
	if _, err := r.ReadAt(b, int64(off)); err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrSymbolTable, what, err)
	}
	return b, nil
}

type elfExe struct {
	f   *elf.File
	lim int64
}

func openELF(r io.ReaderAt, lim int64) (goExe, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: ELF headers: %v", ErrSymbolTable, err)
	}
	return elfExe{f, lim}, nil
}

func (x elfExe) order() binary.ByteOrder { return x.f.ByteOrder }

func (x elfExe) pclntab() ([]byte, error) {
	sec := x.f.Section(".gopclntab")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, errNoSymbolInfo{"no .gopclntab section"}
	}
	return readSection(sec, 0, sec.Size, x.lim, ".gopclntab")
}

func (x elfExe) symbolData(name string) (goFuncData, error) {
	symtab, err := x.f.Symbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return goFuncData{}, errStripped
		}
		return goFuncData{}, fmt.Errorf("%w: ELF symbol table: %v", ErrSymbolTable, err)
	}
	for _, s := range symtab {
		if s.Name != name {
			continue
		}
		for _, p := range x.f.Progs {
			if p.Type != elf.PT_LOAD || s.Value < p.Vaddr || s.Value-p.Vaddr >= p.Filesz {
				continue
			}
			d := s.Value - p.Vaddr
			if p.Filesz > 1<<62 {
				break
			}
			return goFuncData{r: p.ReaderAt, off: int64(d), size: int64(p.Filesz - d)}, nil
		}
		return goFuncData{}, fmt.Errorf("%w: %s at %#x lies in no loaded segment", ErrSymbolTable, name, s.Value)
	}
	return goFuncData{}, errNoSymbolInfo{"no " + name + " symbol: inlined functions cannot be listed"}
}

type machoExe struct {
	f   *macho.File
	lim int64
}

func openMachO(r io.ReaderAt, lim int64) (goExe, error) {
	f, err := macho.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: Mach-O headers: %v", ErrSymbolTable, err)
	}
	return machoExe{f, lim}, nil
}

func (x machoExe) order() binary.ByteOrder { return x.f.ByteOrder }

func (x machoExe) pclntab() ([]byte, error) {
	sec := x.f.Section("__gopclntab")
	if sec == nil {
		return nil, errNoSymbolInfo{"no __gopclntab section"}
	}
	return readSection(sec, 0, sec.Size, x.lim, "__gopclntab")
}

func (x machoExe) symbolData(name string) (goFuncData, error) {
	if x.f.Symtab == nil {
		return goFuncData{}, errStripped
	}
	var sym *macho.Symbol
	hasMain := false
	for i := range x.f.Symtab.Syms {
		s := &x.f.Symtab.Syms[i]
		switch s.Name {
		case "runtime.main":
			hasMain = true
		case name:
			sym = s
		}
	}
	// A stripped Mach-O binary keeps a symbol table without the program's
	// symbols.
	if !hasMain {
		return goFuncData{}, errStripped
	}
	if sym == nil {
		return goFuncData{}, errNoSymbolInfo{"no " + name + " symbol: inlined functions cannot be listed"}
	}
	for _, l := range x.f.Loads {
		seg, ok := l.(*macho.Segment)
		if !ok || seg.Name == "__PAGEZERO" || sym.Value < seg.Addr || sym.Value-seg.Addr >= seg.Filesz || seg.Filesz > 1<<62 {
			continue
		}
		d := sym.Value - seg.Addr
		return goFuncData{r: seg.ReaderAt, off: int64(d), size: int64(seg.Filesz - d)}, nil
	}
	return goFuncData{}, fmt.Errorf("%w: %s at %#x lies in no segment", ErrSymbolTable, name, sym.Value)
}

type peExe struct {
	f   *pe.File
	lim int64
}

func openPE(r io.ReaderAt, lim int64) (goExe, error) {
	f, err := pe.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: PE headers: %v", ErrSymbolTable, err)
	}
	return peExe{f, lim}, nil
}

func (x peExe) order() binary.ByteOrder { return binary.LittleEndian }

// symbol finds a COFF symbol and its section.
func (x peExe) symbol(name string) (*pe.Symbol, *pe.Section, error) {
	if len(x.f.Symbols) == 0 {
		return nil, nil, errStripped
	}
	for _, s := range x.f.Symbols {
		if s.Name != name {
			continue
		}
		if s.SectionNumber < 1 || int(s.SectionNumber) > len(x.f.Sections) {
			return nil, nil, fmt.Errorf("%w: symbol %s in section %d of %d", ErrSymbolTable, name, s.SectionNumber, len(x.f.Sections))
		}
		return s, x.f.Sections[s.SectionNumber-1], nil
	}
	return nil, nil, errNoSymbolInfo{"no " + name + " symbol"}
}

func (x peExe) pclntab() ([]byte, error) {
	start, sec, err := x.symbol("runtime.pclntab")
	if err != nil {
		return nil, err
	}
	end, sec2, err := x.symbol("runtime.epclntab")
	if err != nil {
		return nil, err
	}
	if sec != sec2 || end.Value < start.Value || end.Value > sec.Size {
		return nil, fmt.Errorf("%w: runtime.pclntab %#x..%#x out of its section", ErrSymbolTable, start.Value, end.Value)
	}
	return readSection(sec, uint64(start.Value), uint64(end.Value-start.Value), x.lim, "runtime.pclntab")
}

func (x peExe) symbolData(name string) (goFuncData, error) {
	s, sec, err := x.symbol(name)
	if err != nil {
		return goFuncData{}, err
	}
	if s.Value >= sec.Size {
		return goFuncData{}, fmt.Errorf("%w: %s at %#x past its section", ErrSymbolTable, name, s.Value)
	}
	return goFuncData{r: sec, off: int64(s.Value), size: int64(sec.Size - s.Value)}, nil
}

// pcln is a parsed pclntab header.
type pcln struct {
	data                  []byte
	order                 binary.ByteOrder
	version               uint32
	quantum               uint64
	nfunc                 int
	funcnames, pctab, ftb []byte
	fixed                 int // size of the fixed part of _func
	work                  int // pc-value bytes decoded so far
}

func parsePCLN(data []byte, order binary.ByteOrder) (*pcln, error) {
	if len(data) < 16 {
		return nil, fmt.Errorf("%w: .gopclntab of %d bytes", ErrSymbolTable, len(data))
	}
	t := &pcln{data: data, order: order, version: order.Uint32(data)}
	switch t.version {
	case pclnGo118:
		t.fixed = 40
	case pclnGo120:
		t.fixed = 44
	default:
		return nil, errNoSymbolInfo{fmt.Sprintf("function table format %#x (a toolchain older than Go 1.18 or unknown)", t.version)}
	}
	if data[4] != 0 || data[5] != 0 {
		return nil, fmt.Errorf("%w: bad header padding", ErrSymbolTable)
	}
	switch data[6] {
	case 1, 2, 4:
		t.quantum = uint64(data[6])
	default:
		return nil, fmt.Errorf("%w: instruction quantum %d", ErrSymbolTable, data[6])
	}
	ptr := int(data[7])
	if ptr != 4 && ptr != 8 {
		return nil, fmt.Errorf("%w: pointer size %d", ErrSymbolTable, ptr)
	}
	if len(data) < 8+8*ptr {
		return nil, fmt.Errorf("%w: header truncated", ErrSymbolTable)
	}
	word := func(i int) uint64 {
		if ptr == 4 {
			return uint64(order.Uint32(data[8+i*4:]))
		}
		return order.Uint64(data[8+i*8:])
	}
	nfunc := word(0)
	if nfunc > MaxGoFuncs {
		return nil, fmt.Errorf("%w: %d functions (at most %d)", ErrSymbolTable, nfunc, MaxGoFuncs)
	}
	t.nfunc = int(nfunc)
	sub := func(what string, off uint64) ([]byte, error) {
		if off > uint64(len(data)) {
			return nil, fmt.Errorf("%w: %s offset %d past the table's %d bytes", ErrSymbolTable, what, off, len(data))
		}
		return data[off:], nil
	}
	var err error
	if t.funcnames, err = sub("function name table", word(3)); err != nil {
		return nil, err
	}
	if t.pctab, err = sub("pc-value table", word(6)); err != nil {
		return nil, err
	}
	if t.ftb, err = sub("function table", word(7)); err != nil {
		return nil, err
	}
	if uint64(len(t.ftb)) < (2*nfunc+1)*4 {
		return nil, fmt.Errorf("%w: function table truncated (%d functions in %d bytes)", ErrSymbolTable, nfunc, len(t.ftb))
	}
	return t, nil
}

func (t *pcln) u32(b []byte, off int) uint32 { return t.order.Uint32(b[off:]) }

// name reads a NUL-terminated function name.
func (t *pcln) name(off uint32) (string, error) {
	if uint64(off) >= uint64(len(t.funcnames)) {
		return "", fmt.Errorf("%w: name offset %d out of range", ErrSymbolTable, off)
	}
	b := t.funcnames[off:]
	if len(b) > MaxGoSymbolName+1 {
		b = b[:MaxGoSymbolName+1]
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", fmt.Errorf("%w: function name at %d unterminated or over %d bytes", ErrSymbolTable, off, MaxGoSymbolName)
	}
	return string(b[:i]), nil
}

// maxPCValue decodes the pc-value table at off and returns its largest
// value (-1 for an empty table), as the runtime's pcvalue steps it.
func (t *pcln) maxPCValue(off uint32) (int32, error) {
	if uint64(off) >= uint64(len(t.pctab)) {
		return 0, fmt.Errorf("%w: pc-value table offset %d out of range", ErrSymbolTable, off)
	}
	p := t.pctab[off:]
	start := len(p)
	val, max := int32(-1), int32(-1)
	var pc uint64
	for first := true; ; first = false {
		uv, ok := uvarint(&p)
		if !ok {
			return 0, fmt.Errorf("%w: pc-value table at %d truncated", ErrSymbolTable, off)
		}
		if uv == 0 && !first {
			break
		}
		if uv&1 != 0 {
			uv = ^(uv >> 1)
		} else {
			uv >>= 1
		}
		pcd, ok := uvarint(&p)
		if !ok {
			return 0, fmt.Errorf("%w: pc-value table at %d truncated", ErrSymbolTable, off)
		}
		pc += uint64(pcd) * t.quantum
		val += int32(uv)
		if val > max {
			max = val
		}
	}
	if t.work += start - len(p); t.work > maxGoTableWork {
		return 0, fmt.Errorf("%w: pc-value tables over %d bytes in all", ErrSymbolTable, maxGoTableWork)
	}
	return max, nil
}

// uvarint reads the pclntab's varint (LEB128, at most 32 bits).
func uvarint(p *[]byte) (uint32, bool) {
	var v, shift uint32
	for i, b := range *p {
		if shift >= 35 {
			return 0, false
		}
		v |= uint32(b&0x7f) << shift
		if b&0x80 == 0 {
			*p = (*p)[i+1:]
			return v, true
		}
		shift += 7
	}
	return 0, false
}

// symbols lists every function and inlined call of the table.
func (t *pcln) symbols(gofunc goFuncData, mainPath string) (*vulnref.Symbols, error) {
	out := &vulnref.Symbols{Packages: map[string]map[string]struct{}{}}
	n := 0
	add := func(name string) error {
		pkg, sym, ok := splitGoSymbol(name)
		if !ok {
			return nil
		}
		if pkg == "main" && mainPath != "" {
			pkg = mainPath
		}
		m := out.Packages[pkg]
		if m == nil {
			m = map[string]struct{}{}
			out.Packages[pkg] = m
		}
		if _, dup := m[sym]; !dup {
			if n++; n > MaxGoSymbols {
				return fmt.Errorf("%w: more than %d symbols", ErrSymbolTable, MaxGoSymbols)
			}
			m[sym] = struct{}{}
		}
		return nil
	}
	entry := 20 // bytes of one inline tree entry, Go 1.18-1.19
	nameAt := 12
	if t.version == pclnGo120 {
		entry, nameAt = 16, 4
	}
	var buf []byte
	for i := 0; i < t.nfunc; i++ {
		foff := uint64(t.u32(t.ftb, (2*i+1)*4))
		if foff > uint64(len(t.ftb)) || uint64(len(t.ftb))-foff < uint64(t.fixed) {
			return nil, fmt.Errorf("%w: function %d at offset %d out of range", ErrSymbolTable, i, foff)
		}
		fn := t.ftb[foff:]
		name, err := t.name(t.u32(fn, 4))
		if err != nil {
			return nil, err
		}
		if err := add(name); err != nil {
			return nil, err
		}
		npcdata := t.u32(fn, 28)
		nfuncdata := uint32(fn[t.fixed-1])
		if npcdata > MaxGoPCData {
			return nil, fmt.Errorf("%w: function %q has %d pcdata tables", ErrSymbolTable, name, npcdata)
		}
		if uint64(len(fn)) < uint64(t.fixed)+4*uint64(npcdata+nfuncdata) {
			return nil, fmt.Errorf("%w: function %q truncated", ErrSymbolTable, name)
		}
		if npcdata <= pcdataInlTreeIndex || nfuncdata <= funcdataInlTree {
			continue
		}
		pcoff := t.u32(fn, t.fixed+4*pcdataInlTreeIndex)
		treeOff := t.u32(fn, t.fixed+4*int(npcdata)+4*funcdataInlTree)
		if pcoff == 0 || treeOff == ^uint32(0) {
			continue
		}
		max, err := t.maxPCValue(pcoff)
		if err != nil {
			return nil, err
		}
		if max < 0 {
			continue
		}
		count := int64(max) + 1
		if count > MaxGoInline {
			return nil, fmt.Errorf("%w: function %q has %d inlined calls (at most %d)", ErrSymbolTable, name, count, MaxGoInline)
		}
		size := count * int64(entry)
		if int64(treeOff) > gofunc.size || gofunc.size-int64(treeOff) < size {
			return nil, fmt.Errorf("%w: inline tree of %q out of range", ErrSymbolTable, name)
		}
		if int64(cap(buf)) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := gofunc.r.ReadAt(buf, gofunc.off+int64(treeOff)); err != nil {
			return nil, fmt.Errorf("%w: reading the inline tree of %q: %v", ErrSymbolTable, name, err)
		}
		for k := 0; k < int(count); k++ {
			iname, err := t.name(t.u32(buf, k*entry+nameAt))
			if err != nil {
				return nil, err
			}
			if err := add(iname); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// splitGoSymbol splits a linker function name into its package path and
// its symbol as OSV's imports[].symbols write it: "Func", or "Type.Method"
// for a method of Type or *Type. Generic instantiations lose their type
// arguments. Names without a package yield false.
func splitGoSymbol(name string) (pkg, sym string, ok bool) {
	s := &gosym.Sym{Name: name}
	pkg = s.PackageName()
	if pkg == "" {
		return "", "", false
	}
	if strings.HasPrefix(pkg, "go:") || strings.HasPrefix(pkg, "type:") {
		return "", "", false
	}
	sym = s.BaseName()
	if r := s.ReceiverName(); r != "" {
		if strings.HasPrefix(r, "(*") {
			r = strings.Trim(r, "(*)")
		}
		sym = r + "." + sym
	}
	if p, err := url.PathUnescape(pkg); err == nil {
		pkg = p
	}
	return pkg, sym, true
}
