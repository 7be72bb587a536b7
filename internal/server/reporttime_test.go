package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
)

// TestReportTimesOutsideTheWindowAreFlagged performs attack 10: reports
// dated 2999, 1970 and year 1 used to be stored as the device's word with
// nothing to tell them apart. The server records its own receive time for
// every report, and flags device times more than a day in the future or
// more than a day before the device's enrollment; the reports are still
// stored and counted (a committed report dated 2999 commits the device),
// since the device signed them and nothing depends on their time.
func TestReportTimesOutsideTheWindowAreFlagged(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "dev-a", "hw1", "")
	v1 := e.release(t, "1.0", 1, "hw1")
	dep := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, v1))
	now := e.clk.Now()
	at := func(state report.State, target string, tm time.Time) report.Report {
		r := d.rep(state, target)
		r.Time = tm
		return r
	}
	cases := []struct {
		r    report.Report
		flag string
	}{
		{at(report.StateChecking, "", now), ""},
		{at(report.StateChecking, "", now.Add(23*time.Hour)), ""},
		{at(report.StateChecking, "", now.Add(-23*time.Hour)), ""}, // queued before enrollment finished: within the margin
		{at(report.StateChecking, "", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)), store.TimeBeforeEnrollment},
		{at(report.StateChecking, "", time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)), store.TimeBeforeEnrollment},
		{at(report.StateChecking, "", now.Add(25*time.Hour)), store.TimeFuture},
		{at(report.StateCommitted, v1, time.Date(2999, 12, 31, 23, 59, 59, 0, time.UTC)), store.TimeFuture},
	}
	var rs []report.Report
	for _, c := range cases {
		rs = append(rs, c.r)
	}
	e.clk.Advance(3 * time.Second)
	received := e.clk.Now()
	if got := e.mustPost(t, d, rs...); got.Accepted != len(rs) {
		t.Fatalf("%+v", got)
	}
	h := e.History(d.id)
	if len(h) != len(cases) {
		t.Fatalf("%d reports stored, want %d", len(h), len(cases))
	}
	for i, c := range cases {
		if !h[i].Time.Equal(c.r.Time) {
			t.Errorf("report %d: device time %s, want the signed %s", i, h[i].Time, c.r.Time)
		}
		if !h[i].Received.Equal(received) {
			t.Errorf("report %d: received %s, want the server's %s", i, h[i].Received, received)
		}
		if h[i].TimeFlag != c.flag {
			t.Errorf("report %d dated %s: flag %q, want %q", i, c.r.Time, h[i].TimeFlag, c.flag)
		}
	}
	wantStatus(t, e.view(t, dep.ID), store.DevCommitted, "dev-a")
}
