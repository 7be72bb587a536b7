package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/bundle"
	"github.com/ztota/ztota/internal/fetch"
	"github.com/ztota/ztota/internal/outbox"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestRefusedSetEvictsTheOldest performs 1,001 refusals: the oldest entry
// goes, every newer one stays (before, a random entry was evicted, which
// could be the newest refusal, so a bad release was retried in a loop).
func TestRefusedSetEvictsTheOldest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	st := persisted{modState: modState{Refused: map[string]refusal{}}}
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
		Module: Module{Name: "app", Command: []string{"bin/app"}}, HTTPTimeout: Duration(time.Second), InsecureHTTP: true}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
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

// TestAgentComparesImageAndDirectorDigestsItself performs a director whose
// trusted targets give the assigned path another sha256 (or length) than
// the image repository's: the agent's own comparison refuses it, whatever
// the multi-repository client said.
func TestAgentComparesImageAndDirectorDigestsItself(t *testing.T) {
	dir := t.TempDir()
	a := &Agent{cfg: &Config{DataDir: dir}}
	const p = "app/1.0.0/app-1.0.0.tar"
	good := bytes.Repeat([]byte{1}, 32)
	write := func(repo string, length int64, sha []byte) {
		tf, err := tufrepo.TargetFile(p, length, sha, nil)
		if err != nil {
			t.Fatal(err)
		}
		md := metadata.Targets(time.Now().Add(time.Hour))
		md.Signed.Targets[p] = tf
		data, err := md.ToBytes(false)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "tuf", repo), 0o700)
		if err := os.WriteFile(filepath.Join(dir, "tuf", repo, "targets.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := Candidate{Path: p, Info: &metadata.TargetFiles{Length: 10}, SHA256: hex.EncodeToString(good)}
	write("image", 10, good)
	write("director", 10, good)
	if err := a.crossCheck(c); err != nil {
		t.Fatalf("agreeing repositories: %v", err)
	}
	for name, tc := range map[string]struct {
		length int64
		sha    []byte
	}{"sha256": {10, bytes.Repeat([]byte{2}, 32)}, "length": {11, good}} {
		write("director", tc.length, tc.sha)
		if err := a.crossCheck(c); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "disagree") {
			t.Fatalf("director with another %s: %v, want ErrRefused naming the disagreement", name, err)
		}
	}
}

// TestBackoffIsBoundedExponentialWithJitter: the n-th transient failure in
// a row waits within [d/2, d], d = retryBase·2^(n-1) capped at retryMax.
func TestBackoffIsBoundedExponentialWithJitter(t *testing.T) {
	for n := 1; n <= 40; n++ {
		d := retryMax
		if n < 20 {
			d = min(retryBase<<(n-1), retryMax)
		}
		for range 50 {
			if w := backoff(n); w < d/2 || w > d {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, w, d/2, d)
			}
		}
	}
}

// TestClassifyFinalVersusTransient: only verdicts on signed metadata and
// signed bytes that cannot be installed are final.
func TestClassifyFinalVersusTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want errClass
	}{
		{fmt.Errorf("%w: rollback", ErrRefused), classFinal},
		{fmt.Errorf("install: %w", bundle.ErrUnsafeEntry), classFinal},
		{fmt.Errorf("install: %w", slot.ErrUnsupported), classFinal},
		{fmt.Errorf("download: %w", fetch.ErrHashMismatch), classTransient},
		{fmt.Errorf("download: %w", fetch.ErrTooLong), classTransient},
		{fmt.Errorf("download: %w", &fetch.HTTPStatusError{Code: 404}), classTransient},
		{fmt.Errorf("download: %w", context.Canceled), classTransient},
		{fmt.Errorf("download: %w", syscall.ENOSPC), classTransient},
		{fmt.Errorf("install: %w", slot.ErrDigestMismatch), classTransient},
		{fmt.Errorf("install: %w: %w", bundle.ErrFormat, context.Canceled), classTransient},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
