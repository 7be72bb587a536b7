package bench_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/ztota/ztota/internal/bench"
	"github.com/ztota/ztota/internal/testbed"
)

const sampleStatus = "Name:\tztota\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1248376 kB\nVmHWM:\t   14212 kB\nVmRSS:\t   12100 kB\nRssAnon:\t    4000 kB\nRssFile:\t    8100 kB\nThreads:\t7\n"

func TestParseStatusReadsRSSAndHWMInBytes(t *testing.T) {
	m, err := bench.ParseStatus([]byte(sampleStatus))
	fatalIf(t, err)
	if m.RSS != 12100*1024 || m.HWM != 14212*1024 || m.Anon != 4000*1024 || m.File != 8100*1024 {
		t.Fatalf("got %+v", m)
	}
}

// TestMalformedStatusIsRefused: a status file that lacks a field, repeats
// one, uses another unit or overflows is refused rather than read as 0.
func TestMalformedStatusIsRefused(t *testing.T) {
	for name, s := range map[string]string{
		"missing RSS":   "VmHWM:\t 1 kB\n",
		"missing HWM":   "VmRSS:\t 1 kB\n",
		"repeated":      "VmRSS:\t 1 kB\nVmHWM:\t 1 kB\nVmRSS:\t 2 kB\n",
		"repeated anon": "VmRSS:\t 1 kB\nVmHWM:\t 1 kB\nRssAnon:\t 1 kB\nRssAnon:\t 1 kB\n",
		"other unit":    "VmRSS:\t 1 MB\nVmHWM:\t 1 kB\n",
		"negative":      "VmRSS:\t -1 kB\nVmHWM:\t 1 kB\n",
		"empty number":  "VmRSS:\t kB\nVmHWM:\t 1 kB\n",
		"overflow":      "VmRSS:\t 999999999999999999999 kB\nVmHWM:\t 1 kB\n",
		"too large":     "VmRSS:\t 1 kB\nVmHWM:\t 1 kB\n" + string(bytes.Repeat([]byte("x"), bench.MaxStatusSize)),
	} {
		if _, err := bench.ParseStatus([]byte(s)); !errors.Is(err, bench.ErrStatusFormat) {
			t.Errorf("%s: err = %v, want ErrStatusFormat", name, err)
		}
	}
}

func TestReadStatusOfThisProcess(t *testing.T) {
	m, err := bench.ReadStatus(testbed.Ctx(t), os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Fatalf("implausible reading of this process: %+v", m)
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(sampleStatus))
	f.Add([]byte("VmRSS:\t0 kB\nVmHWM:\t0 kB"))
	f.Add([]byte("VmRSS:VmHWM: kB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bench.ParseStatus(data)
		if err != nil {
			if !errors.Is(err, bench.ErrStatusFormat) {
				t.Fatalf("error not ErrStatusFormat: %v", err)
			}
			return
		}
		if m.RSS < 0 || m.HWM < 0 || m.RSS%1024 != 0 || m.HWM%1024 != 0 {
			t.Fatalf("accepted %q as %+v", data, m)
		}
	})
}
