package server

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"github.com/ztota/ztota/internal/store"
)

// The window a report's device time must fall in to be believed: not more
// than ReportTimeFuture after the server's receive time, and not more than
// ReportTimeBeforeEnrollment before the device's enrollment. A report
// outside it is stored all the same, because it is the device's signed
// word and a committed or failed report must not be lost to a bad clock,
// but it is flagged (store.Report.TimeFlag), and nothing the server
// decides uses the device's time: the receive time is always recorded and
// is what history ordering beyond seq and every server decision rely on.
const (
	ReportTimeFuture           = 24 * time.Hour
	ReportTimeBeforeEnrollment = 24 * time.Hour
)

// reportTimeFlag returns why a device time is not believed, or "".
func reportTimeFlag(t, received, enrolled time.Time) string {
	switch {
	case t.After(received.Add(ReportTimeFuture)):
		return store.TimeFuture
	case t.Before(enrolled.Add(-ReportTimeBeforeEnrollment)):
		return store.TimeBeforeEnrollment
	}
	return ""
}

// flagReportTimesTx sets the time flag of each report of dev, and refuses
// the batch of a device decommissioned since its request was verified.
func (s *Server) flagReportTimesTx(ctx context.Context, tx *sql.Tx, dev string, rows []store.Report, now time.Time) error {
	d, err := store.DeviceTx(ctx, tx, dev)
	if err != nil {
		return err
	}
	if !d.Decommissioned.IsZero() { // decommissioned after the request was authenticated
		return errorf(http.StatusForbidden, "%v: %s no longer may update or report", errDecommissioned, dev)
	}
	flagged := 0
	for i := range rows {
		if rows[i].TimeFlag = reportTimeFlag(rows[i].Time, now, d.Enrolled); rows[i].TimeFlag != "" {
			flagged++
		}
	}
	if flagged > 0 {
		s.log.Warn("device report times outside the accepted window; stored and flagged", "device", dev, "reports", flagged)
	}
	return nil
}
