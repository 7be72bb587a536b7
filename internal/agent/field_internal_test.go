package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/outbox"
	"github.com/ztota/ztota/internal/report"
)

// TestRefusedSetEvictsTheOldest performs 1,001 refusals: the oldest entry
// goes, every newer one stays (before, a random entry was evicted, which
// could be the newest refusal, so a bad release was retried in a loop).
func TestRefusedSetEvictsTheOldest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	st := persisted{Refused: map[string]refusal{}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxRefused + 1 {
		st.Refused[fmt.Sprintf("%064x", i)] = refusal{Why: "bad", At: t0.Add(time.Duration(i) * time.Second)}
	}
	if err := saveState(p, st); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Refused) != maxRefused {
		t.Fatalf("%d refused entries kept, want %d", len(got.Refused), maxRefused)
	}
	if _, ok := got.Refused[fmt.Sprintf("%064x", 0)]; ok {
		t.Fatal("the oldest refusal was kept")
	}
	if r, ok := got.Refused[fmt.Sprintf("%064x", maxRefused)]; !ok || !r.At.Equal(t0.Add(maxRefused*time.Second)) {
		t.Fatalf("the newest refusal was evicted or lost its time: %+v", r)
	}
}

// TestOldStateFileWithStringRefusalsLoads: state.json written before
// refusals carried their time still loads.
func TestOldStateFileWithStringRefusalsLoads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	if err := writeFile(p, `{"seq":3,"floor":2,"refused":{"ab":"rolled back"}}`); err != nil {
		t.Fatal(err)
	}
	st, err := loadState(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Refused["ab"].Why != "rolled back" || st.Floor != 2 {
		t.Fatalf("loaded %+v", st)
	}
}

// TestTerminalReportIsQueuedWhenOutboxIsFull performs a full outbox while
// the server is unreachable: a terminal report evicts the oldest progress
// reports and is queued (before, it was dropped).
func TestTerminalReportIsQueuedWhenOutboxIsFull(t *testing.T) {
	dir := t.TempDir()
	cfg := &Config{DeviceID: "dev-1", HardwareID: "board-a", ServerURL: "http://127.0.0.1:1", DataDir: filepath.Join(dir, "data"),
		ImageRoot: filepath.Join(dir, "i.json"), DirectorRoot: filepath.Join(dir, "d.json"),
		Module: Module{Name: "app", Command: []string{"bin/app"}}, HTTPTimeout: Duration(time.Second)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.box.Close()
	if a.box, err = outbox.Open(ctx, filepath.Join(dir, "small-outbox"), outbox.MinBytes); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", report.MaxDetail)
	for a.box.Len() < 3 {
		a.report(ctx, report.StateDownloading, "app/1/app.tar", "1", 10, big)
	}
	progress := a.box.Len()
	// The outbox is now full of progress reports.
	if id := a.report(ctx, report.StateDownloading, "app/1/app.tar", "1", 20, big); id != "" {
		t.Fatalf("the outbox took another progress report (%d pending): the test needs it full", a.box.Len())
	}
	id := a.report(ctx, report.StateRolledBack, "app/1/app.tar", "1", 0, big)
	if id == "" {
		t.Fatal("the rolled-back report was dropped")
	}
	pending, err := a.box.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := pending[len(pending)-1]; last.ID != id || entryState(last) != report.StateRolledBack {
		t.Fatalf("the last pending report is %s (%s), want the rolled-back one", last.ID, entryState(last))
	}
	if len(pending) > progress {
		t.Fatalf("%d pending after the terminal report, want progress reports evicted", len(pending))
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
