package server_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
)

func TestDuplicateReportsAreStoredOnce(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	d := e.enroll(t, "dev-a", "hw1", "")
	r1 := d.rep(report.StateChecking, "")
	r2 := d.rep(report.StateIdle, "")
	if got := e.mustPost(t, d, r1, r1, r2); got.Accepted != 2 || got.Duplicates != 1 {
		t.Fatalf("same id twice in one batch: %+v, want 2 accepted and 1 duplicate", got)
	}
	e.clk.Advance(time.Second) // a new request signature for the same body
	if got := e.mustPost(t, d, r1, r2); got.Accepted != 0 || got.Duplicates != 2 {
		t.Fatalf("the batch again: %+v, want 0 accepted and 2 duplicates", got)
	}
	// The same id with other content (signed anew) does not replace the
	// stored report.
	changed := r1
	changed.State = report.StateFailed
	changed.Detail = "rewritten"
	e.clk.Advance(time.Second)
	if got := e.mustPost(t, d, changed); got.Accepted != 0 || got.Duplicates != 1 {
		t.Fatalf("a rewritten report: %+v, want a duplicate", got)
	}
	h := e.History(d.id)
	if len(h) != 2 || h[0].ID != r1.ID || h[0].State != string(report.StateChecking) || h[1].ID != r2.ID {
		t.Fatalf("history after duplicates: %+v", h)
	}
	if n := countRows(t, st, "reports"); n != 2 {
		t.Fatalf("%d report rows, want 2", n)
	}
}

func TestHistoryIsAppendOnlyAndOrderedBySeq(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "dev-a", "hw1", "")
	rs := make([]report.Report, 6)
	for i := range rs {
		rs[i] = d.rep(report.StateDownloading, "app/1.0/app.tar")
		rs[i].Progress = i * 20
	}
	// Arrive out of order, over several batches (an outbox replaying).
	signed := map[string]report.Signed{}
	for _, batch := range [][]report.Report{{rs[3], rs[1]}, {rs[5]}, {rs[0], rs[4], rs[2]}} {
		for _, r := range batch {
			signed[r.ID] = mustSign(t, d.key, r)
		}
		var b []report.Signed
		for _, r := range batch {
			b = append(b, signed[r.ID])
		}
		a := e.request(t, d.hc, "POST", "/v1/devices/"+d.id+"/reports", "", marshal(t, b))
		if a.code != http.StatusOK {
			t.Fatalf("batch: %s", a)
		}
		before := e.History(d.id)
		e.clk.Advance(time.Second)
		// Every earlier row is still there, unchanged.
		after := e.History(d.id)
		for _, old := range before {
			if !containsReport(after, old) {
				t.Fatalf("report %s changed or vanished", old.ID)
			}
		}
	}
	var h []store.Report
	a := e.api(t, "GET", "/v1/devices/"+d.id+"/history", nil)
	if a.code != 200 {
		t.Fatal(a)
	}
	if err := json.Unmarshal(a.body, &h); err != nil {
		t.Fatal(err)
	}
	if len(h) != len(rs) {
		t.Fatalf("%d reports in history, want %d", len(h), len(rs))
	}
	for i, r := range h {
		if r.Seq != rs[i].Seq || r.ID != rs[i].ID {
			t.Errorf("history[%d] is seq %d (%s), want seq %d", i, r.Seq, r.ID, rs[i].Seq)
		}
		// What is stored is what the device signed: it still verifies.
		if !bytes.Equal(r.Payload, signed[r.ID].Payload) || !bytes.Equal(r.Sig, signed[r.ID].Sig) {
			t.Errorf("history[%d]: stored payload or signature differs from what was sent", i)
		}
		if _, err := report.VerifyDevice(d.key.Public().(ed25519.PublicKey), d.id, report.Signed{Payload: r.Payload, Sig: r.Sig}); err != nil {
			t.Errorf("history[%d] no longer verifies: %v", i, err)
		}
	}
}

func containsReport(h []store.Report, r store.Report) bool {
	for _, x := range h {
		if x.ID == r.ID {
			return x.Seq == r.Seq && x.State == r.State && bytes.Equal(x.Payload, r.Payload) && bytes.Equal(x.Sig, r.Sig) && x.Received.Equal(r.Received)
		}
	}
	return false
}
