package outbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/report"
)

var (
	ctx     = context.Background()
	testKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	t0      = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

const testMax = 1 << 20

func signed(t testing.TB, seq uint64) (report.Signed, string) {
	t.Helper()
	r := report.New("dev-1", seq, report.StateIdle, t0)
	s, err := report.SignReport(testKey, r)
	if err != nil {
		t.Fatal(err)
	}
	return s, r.ID
}

func open(t testing.TB, dir string, max int64) *Outbox {
	t.Helper()
	o, err := Open(ctx, dir, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// add adds n fresh reports and returns their ids in order.
func add(t testing.TB, o *Outbox, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		s, id := signed(t, uint64(i))
		if err := o.Add(ctx, s, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func pendingIDs(t testing.TB, o *Outbox) []string {
	t.Helper()
	es, err := o.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func logSize(t testing.TB, dir string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestReportsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	ids := add(t, o, 3)
	before, _ := o.Pending(ctx, 0)
	o.Close()
	o = open(t, dir, testMax)
	after, err := o.Pending(ctx, 0)
	if err != nil || len(after) != 3 {
		t.Fatalf("got %d pending, %v", len(after), err)
	}
	for i := range after {
		if after[i].ID != ids[i] || !bytes.Equal(after[i].Signed.Payload, before[i].Signed.Payload) || !bytes.Equal(after[i].Signed.Sig, before[i].Signed.Sig) {
			t.Fatalf("entry %d changed across reopen", i)
		}
		if _, err := report.Verify(testKey.Public().(ed25519.PublicKey), after[i].Signed); err != nil {
			t.Fatalf("entry %d no longer verifies: %v", i, err)
		}
	}
	if o.Dropped() != 0 {
		t.Fatalf("dropped %d bytes of a clean log", o.Dropped())
	}
}

func TestTornTailIsDroppedAndTruncated(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	ids := add(t, o, 3)
	o.Close()
	clean := logSize(t, dir)
	// A crash in the middle of writing a fourth record.
	s, id := signed(t, 4)
	rec := appendReport(nil, Entry{ID: id, Signed: s})
	for _, cut := range []int{1, recHeader - 1, recHeader + 3, len(rec) - 1} {
		f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(rec[:cut])
		f.Close()
		o = open(t, dir, testMax)
		if got := pendingIDs(t, o); !slices.Equal(got, ids) {
			t.Fatalf("cut %d: pending %v, want %v", cut, got, ids)
		}
		if o.Dropped() != int64(cut) || logSize(t, dir) != clean {
			t.Fatalf("cut %d: dropped %d, size %d, want size %d", cut, o.Dropped(), logSize(t, dir), clean)
		}
		o.Close()
	}
	// The log is usable after the repair.
	o = open(t, dir, testMax)
	if err := o.Add(ctx, s, id); err != nil {
		t.Fatal(err)
	}
	o.Close()
	o = open(t, dir, testMax)
	if got := pendingIDs(t, o); len(got) != 4 || got[3] != id {
		t.Fatalf("after repair: %v", got)
	}
}

func TestCorruptRecordDropsEverythingAfterIt(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	ids := add(t, o, 3)
	o.Close()
	data, _ := os.ReadFile(filepath.Join(dir, logName))
	recLen := (len(data) - len(fileHeader)) / 3
	data[len(fileHeader)+recLen+recHeader+20] ^= 0x40 // bit rot in the second record
	os.WriteFile(filepath.Join(dir, logName), data, 0o600)
	o = open(t, dir, testMax)
	if got := pendingIDs(t, o); !slices.Equal(got, ids[:1]) {
		t.Fatalf("pending %v, want %v", got, ids[:1])
	}
	if o.Dropped() != int64(2*recLen) {
		t.Fatalf("dropped %d, want %d", o.Dropped(), 2*recLen)
	}
}

func TestAckPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	ids := add(t, o, 5)
	if err := o.Ack(ctx, []string{ids[1], "unknown-id", ids[3], ids[1]}); err != nil {
		t.Fatal(err)
	}
	want := []string{ids[0], ids[2], ids[4]}
	if got := pendingIDs(t, o); !slices.Equal(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	o.Close()
	o = open(t, dir, testMax)
	if got := pendingIDs(t, o); !slices.Equal(got, want) {
		t.Fatalf("after reopen: pending %v, want %v", got, want)
	}
}

func TestSendFailingMidwayResendsTheUnackedWithSameIDs(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	ids := add(t, o, 5)
	want, _ := o.Pending(ctx, 0)
	calls := 0
	n, err := o.Flush(ctx, 2, func(_ context.Context, b []Entry) error {
		calls++
		if calls == 2 {
			return errors.New("server restarting")
		}
		return nil
	})
	if n != 2 || err == nil {
		t.Fatalf("flush: %d acked, err %v; want 2 and an error", n, err)
	}
	// The device reboots before the next attempt.
	o.Close()
	o = open(t, dir, testMax)
	var sent []Entry
	n, err = o.Flush(ctx, 2, func(_ context.Context, b []Entry) error {
		sent = append(sent, b...)
		return nil
	})
	if n != 3 || err != nil || len(sent) != 3 {
		t.Fatalf("retry: %d acked, %d sent, err %v", n, len(sent), err)
	}
	for i, e := range sent {
		w := want[2+i]
		if e.ID != ids[2+i] || !bytes.Equal(e.Signed.Payload, w.Signed.Payload) || !bytes.Equal(e.Signed.Sig, w.Signed.Sig) {
			t.Fatalf("resent entry %d differs from the original", i)
		}
	}
	if o.Len() != 0 {
		t.Fatalf("%d still pending", o.Len())
	}
}

func TestCrashBetweenSendAndAckResends(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	ids := add(t, o, 2)
	if _, err := o.Pending(ctx, 0); err != nil { // sent, then power lost before Ack
		t.Fatal(err)
	}
	o.Close()
	o = open(t, dir, testMax)
	if got := pendingIDs(t, o); !slices.Equal(got, ids) {
		t.Fatalf("pending %v, want %v", got, ids)
	}
}

func TestCompactionWhenEverythingIsAcked(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	add(t, o, 10)
	if logSize(t, dir) <= int64(len(fileHeader)) {
		t.Fatal("nothing written")
	}
	n, err := o.Flush(ctx, 3, func(context.Context, []Entry) error { return nil })
	if n != 10 || err != nil {
		t.Fatalf("flush: %d, %v", n, err)
	}
	if got := logSize(t, dir); got != int64(len(fileHeader)) || o.Size() != got {
		t.Fatalf("log is %d bytes (Size %d) after everything was acked, want %d", got, o.Size(), len(fileHeader))
	}
	if _, err := os.Stat(filepath.Join(dir, tmpName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	o.Close()
	o = open(t, dir, testMax)
	if o.Len() != 0 {
		t.Fatalf("%d pending after reopen", o.Len())
	}
}

func TestFullOutboxRefusesNewReportsAndKeepsAcceptedOnes(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, MinBytes)
	var ids []string
	for i := 0; ; i++ {
		s, id := signed(t, uint64(i))
		err := o.Add(ctx, s, id)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if i > 1000 {
			t.Fatal("never full")
		}
	}
	if len(ids) == 0 || o.Size() > MinBytes || logSize(t, dir) > MinBytes {
		t.Fatalf("%d accepted, log %d bytes, bound %d", len(ids), logSize(t, dir), MinBytes)
	}
	if got := pendingIDs(t, o); !slices.Equal(got, ids) {
		t.Fatal("accepted reports lost when full")
	}
	// Acknowledging one report frees room for the next, by compaction.
	if err := o.Ack(ctx, ids[:1]); err != nil {
		t.Fatal(err)
	}
	s, id := signed(t, 9999)
	if err := o.Add(ctx, s, id); err != nil {
		t.Fatalf("after ack: %v", err)
	}
	if o.Size() > MinBytes {
		t.Fatalf("log %d bytes, bound %d", o.Size(), MinBytes)
	}
	o.Close()
	o = open(t, dir, MinBytes)
	if got := pendingIDs(t, o); !slices.Equal(got, append(ids[1:], id)) {
		t.Fatalf("after reopen: %d pending, want %d", len(got), len(ids))
	}
}

func TestPartialAckCompactsWhenAckedSpaceDominates(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, testMax)
	ids := add(t, o, 10)
	if err := o.Ack(ctx, ids[:8]); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	live := o.live
	o.mu.Unlock()
	if got := logSize(t, dir); got != int64(len(fileHeader))+live {
		t.Fatalf("log %d bytes, want header plus %d live bytes", got, live)
	}
	o.Close()
	o = open(t, dir, testMax)
	if got := pendingIDs(t, o); !slices.Equal(got, ids[8:]) {
		t.Fatalf("pending %v", got)
	}
}

func TestSecondOpenOfSameDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, testMax)
	if _, err := Open(ctx, dir, testMax); !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
}

func TestForeignFileIsNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, logName)
	os.WriteFile(path, []byte("not an outbox at all"), 0o600)
	if _, err := Open(ctx, dir, testMax); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not an outbox at all" {
		t.Fatal("foreign file modified")
	}
}

func TestCrashDuringCreationOrCompactionRecovers(t *testing.T) {
	dir := t.TempDir()
	// A header torn while the log was created, and a stale temporary file.
	os.WriteFile(filepath.Join(dir, logName), []byte(fileHeader[:5]), 0o600)
	os.WriteFile(filepath.Join(dir, tmpName), []byte("garbage"), 0o600)
	o := open(t, dir, testMax)
	if o.Len() != 0 || logSize(t, dir) != int64(len(fileHeader)) {
		t.Fatalf("len %d size %d", o.Len(), logSize(t, dir))
	}
	if _, err := os.Stat(filepath.Join(dir, tmpName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale temporary file kept")
	}
	add(t, o, 1)
}

func TestDuplicateIDWithOtherContentIsRefused(t *testing.T) {
	o := open(t, t.TempDir(), testMax)
	s, id := signed(t, 1)
	if err := o.Add(ctx, s, id); err != nil {
		t.Fatal(err)
	}
	if err := o.Add(ctx, s, id); err != nil {
		t.Fatalf("identical re-add: %v", err)
	}
	other, _ := signed(t, 2)
	if err := o.Add(ctx, other, id); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("got %v, want ErrDuplicate", err)
	}
	if o.Len() != 1 {
		t.Fatalf("%d pending", o.Len())
	}
	if err := o.Add(ctx, s, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
}

func TestConcurrentAddAndFlushDeliverEverythingInOrder(t *testing.T) {
	o := open(t, t.TempDir(), testMax)
	const writers, per = 4, 25
	var mu sync.Mutex
	var sent []string
	send := func(_ context.Context, b []Entry) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b {
			sent = append(sent, e.ID)
		}
		return nil
	}
	order := make([][]string, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				s, id := signed(t, uint64(i))
				if err := o.Add(ctx, s, id); err != nil {
					t.Error(err)
					return
				}
				order[w] = append(order[w], id)
				if i%5 == 0 {
					if _, err := o.Flush(ctx, 7, send); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if _, err := o.Flush(ctx, 7, send); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, id := range sent {
		if _, dup := pos[id]; dup {
			t.Fatalf("%s sent twice without a failure", id)
		}
		pos[id] = i
	}
	for w := range order {
		for i, id := range order[w] {
			p, ok := pos[id]
			if !ok {
				t.Fatalf("%s never sent", id)
			}
			if i > 0 && p < pos[order[w][i-1]] {
				t.Fatalf("writer %d: report %d sent before report %d", w, i, i-1)
			}
		}
	}
}
