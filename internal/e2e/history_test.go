package e2e

import (
	"archive/tar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/store"
)

// checkHistory asserts what every device history must keep whatever
// happened to the device: each report id stored once, seq strictly
// increasing (a seq reused after a crash would show as a repeat), and no
// report received before one with a lower seq (the outbox is in order).
func checkHistory(t *testing.T, dev string, h []store.Report) {
	t.Helper()
	ids := map[string]bool{}
	for i, r := range h {
		if r.DeviceID != dev {
			t.Errorf("%s: report %s belongs to %q", dev, r.ID, r.DeviceID)
		}
		if ids[r.ID] {
			t.Errorf("%s: report id %s stored twice", dev, r.ID)
		}
		ids[r.ID] = true
		if i == 0 {
			continue
		}
		prev := h[i-1]
		if r.Seq <= prev.Seq {
			t.Errorf("%s: seq %d (%s) follows seq %d (%s): a sequence number was reused or went backwards", dev, r.Seq, r.State, prev.Seq, prev.State)
		}
		if r.Received.Before(prev.Received) {
			t.Errorf("%s: seq %d (%s) was received at %s, before seq %d (%s) at %s: reports arrived out of order",
				dev, r.Seq, r.State, r.Received, prev.Seq, prev.State, prev.Received)
		}
	}
}

// statesOf lists the states reported for target, runs of one state
// (download progress) folded into one.
func statesOf(h []store.Report, target string) []string {
	var out []string
	for _, r := range h {
		if r.Target != target {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != r.State {
			out = append(out, r.State)
		}
	}
	return out
}

func count(states []string, s string) int {
	n := 0
	for _, x := range states {
		if x == s {
			n++
		}
	}
	return n
}

func wantStates(t *testing.T, dev, target string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: states reported for %s:\n got  %s\n want %s", dev, target, strings.Join(got, " → "), strings.Join(want, " → "))
	}
}

// scriptBundle writes a tar bundle whose module bin/app is a shell script
// that stays up until signalled and answers "bin/app health" with exit 0
// when healthy, 1 otherwise.
func scriptBundle(t *testing.T, dir, version string, healthy bool, padding int) string {
	t.Helper()
	code := "0"
	if !healthy {
		code = "1"
	}
	script := "#!/bin/sh\nif [ \"$1\" = health ]; then exit " + code + "; fi\ntrap 'exit 0' TERM INT\nwhile :; do sleep 0.05; done\n"
	path := filepath.Join(dir, "app-"+version+".tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		name string
		mode int64
		data []byte
	}{{"bin/app", 0o755, []byte(script)}, {"VERSION", 0o644, []byte(version)}, {"padding", 0o644, make([]byte, padding)}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
