package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/ztota/ztota/internal/store"
)

// DeployRequest is the body of POST /v1/deployments.
type DeployRequest struct {
	Release          string    `json:"release"` // target path or NAME@VERSION
	Devices          []string  `json:"devices,omitempty"`
	Group            string    `json:"group,omitempty"`
	Waves            []float64 `json:"waves,omitempty"`             // cumulative percentages, e.g. [1, 10, 100]; default [100]
	FailureThreshold float64   `json:"failure_threshold,omitempty"` // fraction of opened devices that may fail; default 0.1
}

// Validate checks the waves and threshold.
func (d *DeployRequest) Validate() error {
	if len(d.Waves) == 0 {
		d.Waves = []float64{100}
	}
	if len(d.Waves) > 20 {
		return errorf(http.StatusBadRequest, "at most 20 waves")
	}
	prev := 0.0
	for _, w := range d.Waves {
		if math.IsNaN(w) || w <= prev || w > 100 {
			return errorf(http.StatusBadRequest, "waves must be increasing cumulative percentages in (0, 100], e.g. [1, 10, 100]")
		}
		prev = w
	}
	if d.Waves[len(d.Waves)-1] != 100 {
		return errorf(http.StatusBadRequest, "the last wave must be 100 (percent)")
	}
	if math.IsNaN(d.FailureThreshold) || d.FailureThreshold < 0 || d.FailureThreshold > 1 {
		return errorf(http.StatusBadRequest, "failure_threshold is a fraction between 0 and 1")
	}
	if d.FailureThreshold == 0 {
		d.FailureThreshold = 0.1
	}
	if (len(d.Devices) == 0) == (d.Group == "") {
		return errorf(http.StatusBadRequest, "give either devices or a group")
	}
	if len(d.Devices) > 100000 {
		return errorf(http.StatusBadRequest, "at most 100000 devices per deployment")
	}
	return nil
}

// waveOf returns the wave index of the i-th of n devices.
func waveOf(i, n int, waves []float64) int {
	for w, pct := range waves {
		if i < int(math.Ceil(float64(n)*pct/100)) {
			return w
		}
	}
	return len(waves) - 1
}

func (s *Server) handleCreateDeployment(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	if err := decodeJSON(r, 8<<20, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	dep, gate, _, err := s.createDeployment(ctx, req, false, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.deploymentView(ctx, dep.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Gate = gate
	writeJSON(w, http.StatusCreated, v)
}

// errAllBusy: every device of a deployment made with skipBusy is busy.
var errAllBusy = errorf(http.StatusConflict, "every device is still in a running deployment")

// createDeployment checks req (waves, release, gate, devices, hardware)
// and creates the deployment, answering the gate's note. Devices busy in
// a running deployment refuse it, or, with skipBusy, are left out and
// returned (errAllBusy when none is left). within, if set, runs in the
// creating transaction with the deployment and its devices.
func (s *Server) createDeployment(ctx context.Context, req DeployRequest, skipBusy bool, within func(*sql.Tx, store.Deployment, []string) error) (store.Deployment, string, []string, error) {
	var skipped []string
	fail := func(err error) (store.Deployment, string, []string, error) { return store.Deployment{}, "", nil, err }
	if err := req.Validate(); err != nil {
		return fail(err)
	}
	rel, err := s.st.Release(ctx, req.Release)
	if err != nil {
		return fail(err)
	}
	gate, err := s.gateRelease(ctx, rel)
	if err != nil {
		return fail(err)
	}
	var devs []store.Device
	if req.Group != "" {
		if devs, err = s.st.Devices(ctx, req.Group); err != nil {
			return fail(err)
		}
		if len(devs) == 0 {
			return fail(errorf(http.StatusBadRequest, "group %q has no devices", req.Group))
		}
	} else {
		seen := map[string]bool{}
		for _, id := range req.Devices {
			if seen[id] {
				return fail(errorf(http.StatusBadRequest, "device %s listed twice", id))
			}
			seen[id] = true
			d, err := s.st.Device(ctx, id)
			if err != nil {
				return fail(errorf(http.StatusBadRequest, "%v", err))
			}
			devs = append(devs, d)
		}
	}
	if req.Group != "" {
		devs = slices.DeleteFunc(devs, func(d store.Device) bool { return !d.Decommissioned.IsZero() }) // no longer part of the fleet
		if len(devs) == 0 {
			return fail(errorf(http.StatusBadRequest, "group %q has no devices that are not decommissioned", req.Group))
		}
	} else if err := checkNotDecommissioned(devs); err != nil {
		return fail(err)
	}
	var wrong []string
	for _, d := range devs {
		if !slices.Contains(rel.HardwareIDs, d.HardwareID) {
			wrong = append(wrong, d.ID+" ("+d.HardwareID+")")
		}
	}
	if len(wrong) > 0 {
		return fail(errorf(http.StatusBadRequest, "release %s is for hardware %v; these devices differ: %v", rel.Target, rel.HardwareIDs, wrong))
	}
	dep := store.Deployment{ID: "dep-" + NewToken()[:12], Target: rel.Target, Waves: req.Waves, FailureThreshold: req.FailureThreshold, Status: store.DeployRunning}
	dds := make([]store.DeploymentDevice, len(devs))
	for i, d := range devs {
		dds[i] = store.DeploymentDevice{DeviceID: d.ID, Wave: waveOf(i, len(devs), req.Waves), Status: store.DevPending}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		ids := make([]string, len(dds))
		for i, d := range dds {
			ids[i] = d.DeviceID
		}
		// One running deployment per device and module: a device may
		// take releases of two modules at the same time.
		busy, err := store.BusyModuleDevicesTx(ctx, tx, ids, rel.Module)
		if err != nil {
			return err
		}
		if len(busy) > 0 && skipBusy {
			skipped, dds = dropBusy(busy, dds, req.Waves)
			if len(dds) == 0 {
				return errAllBusy
			}
		} else if len(busy) > 0 {
			var list []string
			for _, id := range ids {
				if dep, ok := busy[id]; ok {
					list = append(list, id+" (in "+dep+")")
				}
			}
			return errorf(http.StatusConflict, "devices are still in running deployments of module %s: %s; wait for them or halt them with 'ztota deploy halt ID'", rel.Module, strings.Join(list, ", "))
		}
		if err := store.CreateDeploymentTx(ctx, tx, dep, dds); err != nil {
			return err
		}
		if within != nil {
			if err := within(tx, dep, deviceIDs(dds)); err != nil {
				return err
			}
		}
		return s.advanceTx(ctx, tx, dep.ID)
	})
	if err != nil {
		return fail(err)
	}
	s.log.Info("deployment created", "id", dep.ID, "release", rel.Target, "devices", len(dds), "waves", req.Waves)
	return dep, gate, skipped, nil
}

// advanceTx applies the wave rules: assign every pending device of the open
// wave; halt when failures pass the threshold; open the next wave when
// every device of the open waves has committed or failed.
func (s *Server) advanceTx(ctx context.Context, tx *sql.Tx, id string) error {
	dep, err := store.DeploymentTx(ctx, tx, id)
	if err != nil {
		return err
	}
	if dep.Status != store.DeployRunning {
		return nil
	}
	rel, err := store.ReleaseTx(ctx, tx, dep.Target)
	if err != nil {
		return err
	}
	for {
		devs, err := store.DeploymentDevicesTx(ctx, tx, id)
		if err != nil {
			return err
		}
		opened, failed, done := 0, 0, 0
		for _, d := range devs {
			if d.Wave > dep.Wave || d.Status == store.DevCancelled { // cancelled (decommissioned) devices do not count
				continue
			}
			opened++
			switch d.Status {
			case store.DevFailed:
				failed++
				done++
			case store.DevCommitted:
				done++
			}
		}
		if opened > 0 && float64(failed)/float64(opened) > dep.FailureThreshold {
			reason := fmt.Sprintf("%d of %d devices in waves 1-%d failed, above the threshold of %.0f%%", failed, opened, dep.Wave+1, dep.FailureThreshold*100)
			return s.haltTx(ctx, tx, dep, devs, reason)
		}
		// Assign the open wave's pending devices, unless the certifier has
		// revoked the release since the deployment began.
		gateChecked := false
		for _, d := range devs {
			if d.Wave <= dep.Wave && d.Status == store.DevPending {
				if !gateChecked {
					gateChecked = true
					if reason, err := s.revokedTx(ctx, tx, rel); err != nil {
						return err
					} else if reason != "" {
						return s.haltTx(ctx, tx, dep, devs, reason)
					}
				}
				dev, err := store.DeviceTx(ctx, tx, d.DeviceID)
				if err != nil {
					return err
				}
				if err := s.assignTx(ctx, tx, dev, &rel, id); err != nil {
					return err
				}
				if err := store.SetDeploymentDeviceTx(ctx, tx, id, d.DeviceID, store.DevAssigned); err != nil {
					return err
				}
			}
		}
		if done < opened {
			return store.UpdateDeploymentTx(ctx, tx, dep)
		}
		if dep.Wave >= len(dep.Waves)-1 {
			dep.Status = store.DeployCompleted
			s.log.Info("deployment completed", "id", id, "failed", failed, "devices", opened)
			return store.UpdateDeploymentTx(ctx, tx, dep)
		}
		dep.Wave++
		s.log.Info("deployment wave opened", "id", id, "wave", dep.Wave+1)
		if err := store.UpdateDeploymentTx(ctx, tx, dep); err != nil {
			return err
		}
	}
}

// haltTx stops a deployment: devices that have not got the release are
// cancelled, and those assigned but not done are pointed back at what
// they run in the release's module (their other modules keep theirs).
func (s *Server) haltTx(ctx context.Context, tx *sql.Tx, dep store.Deployment, devs []store.DeploymentDevice, reason string) error {
	rel, err := store.ReleaseTx(ctx, tx, dep.Target)
	if err != nil {
		return err
	}
	dep.Status = store.DeployHalted
	dep.Reason = reason
	s.log.Warn("deployment halted", "id", dep.ID, "reason", reason)
	for _, d := range devs {
		if d.Status != store.DevPending && d.Status != store.DevAssigned {
			continue
		}
		if err := store.SetDeploymentDeviceTx(ctx, tx, dep.ID, d.DeviceID, store.DevCancelled); err != nil {
			return err
		}
		if d.Status == store.DevAssigned {
			if err := s.restoreInstalledTx(ctx, tx, d.DeviceID, rel.Module); err != nil {
				return err
			}
		}
	}
	return store.UpdateDeploymentTx(ctx, tx, dep)
}

func (s *Server) handleHaltDeployment(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		dep, err := store.DeploymentTx(ctx, tx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if dep.Status != store.DeployRunning {
			return errorf(http.StatusConflict, "deployment %s is already %s", dep.ID, dep.Status)
		}
		devs, err := store.DeploymentDevicesTx(ctx, tx, dep.ID)
		if err != nil {
			return err
		}
		return s.haltTx(ctx, tx, dep, devs, "halted by the operator")
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.deploymentView(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// restoreInstalledTx points a device's director back at what it runs in
// module; the device's other modules keep what their director lists.
func (s *Server) restoreInstalledTx(ctx context.Context, tx *sql.Tx, devID, module string) error {
	dev, err := store.DeviceTx(ctx, tx, devID)
	if err != nil {
		return err
	}
	installed := ""
	if m, err := store.DeviceModuleTx(ctx, tx, devID, module); err == nil {
		installed = m.Release
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if installed == "" {
		return s.assignModuleTx(ctx, tx, dev, module, nil, "")
	}
	rel, err := store.ReleaseTx(ctx, tx, installed)
	if errors.Is(err, store.ErrNotFound) || err == nil && rel.Module != module {
		// The device runs something never released here (a factory image,
		// say): list nothing, so it keeps what it runs. Failing instead
		// would refuse the device's report batch for ever.
		return s.assignModuleTx(ctx, tx, dev, module, nil, "")
	}
	if err != nil {
		return err
	}
	return s.assignModuleTx(ctx, tx, dev, module, &rel, "")
}

// onReportTx moves deployments forward on boot-confirmed commits and
// failures.
func (s *Server) onReportTx(ctx context.Context, tx *sql.Tx, dev string, r store.Report) error {
	if err := s.closeMitigationsTx(ctx, tx, dev, r); err != nil {
		return err
	}
	var status string
	switch r.State {
	case "committed":
		status = store.DevCommitted
	case "refused", "rolled-back": // "failed" is transient: the device retries
		status = store.DevFailed
	default:
		return nil
	}
	if r.Target == "" {
		return nil
	}
	if err := s.lateOutcomeTx(ctx, tx, dev, r, status); err != nil {
		return err
	}
	deps, err := store.ActiveDeploymentsForDeviceTx(ctx, tx, dev, r.Target)
	if err != nil {
		return err
	}
	for _, id := range deps {
		if err := store.SetDeploymentDeviceTx(ctx, tx, id, dev, status); err != nil {
			return err
		}
		if status == store.DevFailed {
			rel, err := store.ReleaseTx(ctx, tx, r.Target)
			if err != nil {
				return err
			}
			if err := s.restoreInstalledTx(ctx, tx, dev, rel.Module); err != nil {
				return err
			}
		}
		if err := s.advanceTx(ctx, tx, id); err != nil {
			return err
		}
	}
	return nil
}
