package store_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/store"
)

// TestHistoryLimitKeepsTheNewestReports plays a long-lived device whose
// history outgrows the limit: a history of 5 reports read with limit 2
// must be the last two (seq 4 and 5, in seq order), so that what the
// device did lately (its last committed or rolled-back report) is shown.
// The query used to return the oldest reports, and a device past 10,000
// reports never showed a recent one again.
func TestHistoryLimitKeepsTheNewestReports(t *testing.T) {
	st, ctx := open(t)
	now := time.Now()
	var rs []store.Report
	for seq := uint64(1); seq <= 5; seq++ {
		id := fmt.Sprintf("r%d", seq)
		rs = append(rs, store.Report{ID: id, DeviceID: "d1", Seq: seq, Time: now, State: "idle", Payload: []byte(id), Sig: []byte("s")})
	}
	if err := st.Tx(ctx, func(tx *sql.Tx) error {
		_, err := store.AddReportsTx(ctx, tx, rs, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	h, err := st.History(ctx, "d1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Seq != 4 || h[1].Seq != 5 {
		t.Fatalf("history with limit 2: %+v, want seq 4 then 5", h)
	}
	if h, _ := st.History(ctx, "d1", 0); len(h) != 5 || h[0].Seq != 1 || h[4].Seq != 5 {
		t.Fatalf("whole history: %+v", h)
	}
}

// TestReportsPerDeviceAreBounded performs a device flooding the server
// with distinct reports (a stolen key posting its whole replay window of
// full batches): past MaxReportsPerDevice the oldest of that device are
// deleted, the newest kept, and another device's reports are untouched.
// Before, every report was kept and one device could fill the disk.
func TestReportsPerDeviceAreBounded(t *testing.T) {
	st, ctx := open(t)
	now := time.Now()
	mk := func(dev string, seq uint64) store.Report {
		id := fmt.Sprintf("%s-%d", dev, seq)
		return store.Report{ID: id, DeviceID: dev, Seq: seq, Time: now, State: "idle", Payload: []byte(id), Sig: []byte("s")}
	}
	add := func(rs []store.Report) {
		if err := st.Tx(ctx, func(tx *sql.Tx) error {
			_, err := store.AddReportsTx(ctx, tx, rs, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	add([]store.Report{mk("quiet", 1), mk("quiet", 2)})
	total := store.MaxReportsPerDevice + 130
	var batch []store.Report
	for seq := 1; seq <= total; seq++ {
		batch = append(batch, mk("flood", uint64(seq)))
		if len(batch) == 64 || seq == total {
			add(batch)
			batch = nil
		}
	}
	h, err := st.History(ctx, "flood", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != store.MaxReportsPerDevice || h[0].Seq != uint64(total-store.MaxReportsPerDevice+1) || h[len(h)-1].Seq != uint64(total) {
		t.Fatalf("flooding device keeps %d reports (seq %d..%d), want the newest %d", len(h), h[0].Seq, h[len(h)-1].Seq, store.MaxReportsPerDevice)
	}
	if q, _ := st.History(ctx, "quiet", 0); len(q) != 2 {
		t.Fatalf("the other device's history: %d reports, want 2", len(q))
	}
}
