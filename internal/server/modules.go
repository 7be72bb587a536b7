package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/ztota/ztota/internal/store"
)

// A device runs one release per module (store.DeviceModule). This file
// holds what the server does per module: the module a report is about,
// the state a report changes, and the device views that show modules.

// reportModuleTx returns the module a report is about: its module field
// when present; else the module of the release its target names; else
// the device's only module. ok is false when the report names a module
// the device has no release of (or a target of another module): such a
// report is kept in the history but changes no module state. A report
// with no module that none of the rules place is about the device.
func (s *Server) reportModuleTx(ctx context.Context, tx *sql.Tx, dev string, r store.Report) (module string, ok bool, err error) {
	var rel store.Release
	known := false
	if r.Target != "" {
		rel, err = store.ReleaseTx(ctx, tx, r.Target)
		switch {
		case err == nil:
			known = true
		case !errors.Is(err, store.ErrNotFound):
			return "", false, err
		}
	}
	if r.Module != "" {
		if known && rel.Module != r.Module {
			s.log.Warn("report names a module its target is not a release of; kept in the history, no state changed",
				"device", dev, "report", r.ID, "module", r.Module, "target", r.Target, "target_module", rel.Module)
			return "", false, nil
		}
		if _, err := store.DeviceModuleTx(ctx, tx, dev, r.Module); err == nil {
			return r.Module, true, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", false, err
		}
		if known && r.State == "committed" {
			return r.Module, true, nil // a commit of a release of that module: the device now has one
		}
		s.log.Warn("report about a module the device has no release of; kept in the history, no state changed",
			"device", dev, "report", r.ID, "module", r.Module, "state", r.State)
		return "", false, nil
	}
	mods, err := store.DeviceModulesTx(ctx, tx, dev)
	if err != nil {
		return "", false, err
	}
	if known {
		// A module the device has a row of, or a commit that gives it one;
		// anything else about a release never assigned or committed here
		// is about the device.
		if r.State == "committed" || slices.ContainsFunc(mods, func(m store.DeviceModule) bool { return m.Module == rel.Module }) {
			return rel.Module, true, nil
		}
		return "", true, nil
	}
	if len(mods) == 1 {
		return mods[0].Module, true, nil
	}
	return "", true, nil
}

// ingestReportTx applies one new report of dev: the device's last-seen
// time and state, its module's state (installed release on a commit,
// mode, advisories and since on the mitigation states), then the
// deployments it moves.
func (s *Server) ingestReportTx(ctx context.Context, tx *sql.Tx, dev string, rep store.Report, now time.Time) error {
	module, ok, err := s.reportModuleTx(ctx, tx, dev, rep)
	if err != nil {
		return err
	}
	if !ok {
		return store.TouchDeviceTx(ctx, tx, dev, rep, now)
	}
	if err := store.UpdateDeviceStatusTx(ctx, tx, dev, rep, now); err != nil {
		return err
	}
	if module != "" {
		if err := store.UpdateModuleStatusTx(ctx, tx, dev, module, rep, rep.Received); err != nil {
			return err
		}
		rep.Module = module // what the deployments go by (the history keeps the report as signed)
	}
	return s.onReportTx(ctx, tx, dev, rep)
}

// deviceView is a device with its modules (never null in the JSON).
func deviceView(d store.Device, mods []store.DeviceModule) store.Device {
	if mods == nil {
		mods = []store.DeviceModule{}
	}
	d.Modules = mods
	return d
}

func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	devs, err := s.st.Devices(ctx, r.URL.Query().Get("group"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	mods, err := s.st.AllDeviceModules(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]store.Device, len(devs))
	for i, d := range devs {
		out[i] = deviceView(d, mods[d.ID])
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetDevice(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d, err := s.st.Device(ctx, r.PathValue("device"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	mods, err := s.st.DeviceModules(ctx, d.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deviceView(d, mods))
}

// checkBackups refuses a targets document in which a release designates
// a backup that is itself, that the same document does not sign (devices
// install a backup only when the image targets list it), that is of
// another module, or that does not support every hardware id the release
// does.
func checkBackups(rels []store.Release) error {
	byTarget := make(map[string]store.Release, len(rels))
	for _, r := range rels {
		byTarget[r.Target] = r
	}
	for _, r := range rels {
		if r.Backup == "" {
			continue
		}
		if r.Backup == r.Target {
			return errorf(http.StatusBadRequest, "target %s names itself as its backup: the backup must be another release of module %s (nothing from this targets document was stored)", r.Target, r.Module)
		}
		b, ok := byTarget[r.Backup]
		if !ok {
			return errorf(http.StatusBadRequest, "target %s names backup %s, which this targets document does not sign: list the backup release in the same targets (nothing from this targets document was stored)", r.Target, r.Backup)
		}
		if b.Module != r.Module {
			return errorf(http.StatusBadRequest, "target %s (module %s) names backup %s of module %s: a backup must be a release of the same module (nothing from this targets document was stored)", r.Target, r.Module, r.Backup, b.Module)
		}
		var missing []string
		for _, hw := range r.HardwareIDs {
			if !slices.Contains(b.HardwareIDs, hw) {
				missing = append(missing, hw)
			}
		}
		if len(missing) > 0 {
			return errorf(http.StatusBadRequest, "target %s names backup %s, which does not support hardware %v: a backup must run on every hardware its release does (nothing from this targets document was stored)", r.Target, r.Backup, missing)
		}
	}
	return nil
}
