package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
)

// fleet enrolls n devices of hw1 in group "fleet", named d00, d01, ...
func (e *env) fleet(t *testing.T, n int) []*device {
	t.Helper()
	var ds []*device
	for i := 0; i < n; i++ {
		ds = append(ds, e.enroll(t, fmt.Sprintf("d%02d", i), "hw1", "fleet"))
	}
	return ds
}

func (e *env) deploy(t *testing.T, body string) server.DeploymentView {
	t.Helper()
	a := e.api(t, "POST", "/v1/deployments", []byte(body))
	if a.code != http.StatusCreated {
		t.Fatalf("deploy: %s", a)
	}
	var v server.DeploymentView
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) view(t *testing.T, id string) server.DeploymentView {
	t.Helper()
	a := e.api(t, "GET", "/v1/deployments/"+id, nil)
	if a.code != 200 {
		t.Fatalf("deployment %s: %s", id, a)
	}
	var v server.DeploymentView
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// statuses maps device id to its status in the deployment.
func statuses(v server.DeploymentView) map[string]string {
	m := map[string]string{}
	for _, d := range v.Devices {
		m[d.DeviceID] = d.Status
	}
	return m
}

func wantStatus(t *testing.T, v server.DeploymentView, status string, ids ...string) {
	t.Helper()
	s := statuses(v)
	for _, id := range ids {
		if s[id] != status {
			t.Errorf("deployment %s: device %s is %q, want %q (all: %v)", v.ID, id, s[id], status, s)
		}
	}
}

func wantDirector(t *testing.T, e *env, target string, ids ...string) {
	t.Helper()
	want := []string{}
	if target != "" {
		want = []string{target}
	}
	for _, id := range ids {
		got := directorTargets(t, e.Server.Store(), id)
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("director of %s lists %v, want %v", id, got, want)
		}
	}
}

func TestNextWaveOpensOnlyWhenOpenWavesAreDone(t *testing.T) {
	e := newEnv(t, nil)
	ds := e.fleet(t, 4)
	v1 := e.release(t, "1.0", 1, "hw1")
	dep := e.deploy(t, fmt.Sprintf(`{"release":%q,"group":"fleet","waves":[50,100],"failure_threshold":0.5}`, v1))
	wantStatus(t, dep, store.DevAssigned, "d00", "d01")
	wantStatus(t, dep, store.DevPending, "d02", "d03")
	wantDirector(t, e, v1, "d00", "d01")
	wantDirector(t, e, "", "d02", "d03")

	// Progress reports and one commit: the wave stays open.
	e.mustPost(t, ds[0], ds[0].rep(report.StateDownloading, v1), ds[0].rep(report.StateInstalling, v1), ds[0].rep(report.StateCommitted, v1))
	e.mustPost(t, ds[1], ds[1].rep(report.StateDownloading, v1))
	v := e.view(t, dep.ID)
	if v.Wave != 0 || v.Status != store.DeployRunning {
		t.Fatalf("wave opened before every device of wave 1 was done: %+v", v.Deployment)
	}
	wantStatus(t, v, store.DevCommitted, "d00")
	wantStatus(t, v, store.DevPending, "d02", "d03")
	wantDirector(t, e, "", "d02", "d03")

	// A commit for another target moves nothing.
	e.mustPost(t, ds[1], ds[1].rep(report.StateCommitted, "app/9.9/other.tar"))
	if v := e.view(t, dep.ID); v.Wave != 0 {
		t.Fatalf("a commit of another target opened the next wave")
	}

	// A failure also closes a device: 1 of 2 failed is not above 0.5.
	e.mustPost(t, ds[1], ds[1].rep(report.StateRolledBack, v1))
	v = e.view(t, dep.ID)
	if v.Wave != 1 || v.Status != store.DeployRunning {
		t.Fatalf("wave 2 did not open after wave 1 was done: %+v", v.Deployment)
	}
	wantStatus(t, v, store.DevFailed, "d01")
	wantStatus(t, v, store.DevAssigned, "d02", "d03")
	wantDirector(t, e, v1, "d02", "d03")
	wantDirector(t, e, "", "d01") // the failed device points back at what it runs (nothing)

	e.mustPost(t, ds[2], ds[2].rep(report.StateCommitted, v1))
	e.mustPost(t, ds[3], ds[3].rep(report.StateCommitted, v1))
	v = e.view(t, dep.ID)
	if v.Status != store.DeployCompleted {
		t.Fatalf("deployment not completed: %+v", v.Deployment)
	}
}

func TestFailuresAboveThresholdHaltAndRestoreDirectors(t *testing.T) {
	e := newEnv(t, nil)
	ds := e.fleet(t, 10)
	v1 := e.release(t, "1.0", 1, "hw1")
	v2 := e.release(t, "2.0", 2, "hw1")
	// Everyone runs v1 first.
	first := e.deploy(t, fmt.Sprintf(`{"release":%q,"group":"fleet","failure_threshold":1}`, v1))
	for _, d := range ds {
		e.mustPost(t, d, d.rep(report.StateCommitted, v1))
	}
	if v := e.view(t, first.ID); v.Status != store.DeployCompleted {
		t.Fatalf("v1 deployment: %+v", v.Deployment)
	}
	ids := func(ds []*device) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.id)
		}
		return out
	}
	// v2 in waves of 10%, 50%, 100%: d00 | d01-d04 | d05-d09.
	dep := e.deploy(t, fmt.Sprintf(`{"release":%q,"group":"fleet","waves":[10,50,100],"failure_threshold":0.25}`, v2))
	wantStatus(t, dep, store.DevAssigned, "d00")
	wantStatus(t, dep, store.DevPending, ids(ds[1:])...)
	wantDirector(t, e, v2, "d00")
	wantDirector(t, e, v1, ids(ds[1:])...)

	e.mustPost(t, ds[0], ds[0].rep(report.StateCommitted, v2))
	v := e.view(t, dep.ID)
	wantStatus(t, v, store.DevAssigned, ids(ds[1:5])...)
	wantStatus(t, v, store.DevPending, ids(ds[5:])...)
	wantDirector(t, e, v2, ids(ds[1:5])...)

	e.mustPost(t, ds[1], ds[1].rep(report.StateCommitted, v2))
	// "failed" is transient (the device retries): it closes nothing.
	e.mustPost(t, ds[2], ds[2].rep(report.StateFailed, v2))
	wantStatus(t, e.view(t, dep.ID), store.DevAssigned, "d02")
	e.mustPost(t, ds[2], ds[2].rep(report.StateRefused, v2)) // 1 of 5: at or below 25%
	v = e.view(t, dep.ID)
	if v.Status != store.DeployRunning || v.Wave != 1 {
		t.Fatalf("halted or advanced too early: %+v", v.Deployment)
	}
	wantDirector(t, e, v1, "d02") // the failed device is pointed back at v1

	e.mustPost(t, ds[3], ds[3].rep(report.StateRolledBack, v2)) // 2 of 5: above 25%
	v = e.view(t, dep.ID)
	if v.Status != store.DeployHalted || v.Reason == "" {
		t.Fatalf("deployment not halted with a reason: %+v", v.Deployment)
	}
	wantStatus(t, v, store.DevCommitted, "d00", "d01")
	wantStatus(t, v, store.DevFailed, "d02", "d03")
	wantStatus(t, v, store.DevCancelled, ids(ds[4:])...)
	// d04 was assigned v2 but had not finished: its director lists v1
	// again. The pending devices never left v1.
	wantDirector(t, e, v1, ids(ds[2:])...)
	wantDirector(t, e, v2, "d00", "d01")

	// A late commit from a device that was mid-install at the halt is
	// counted (field failure 10), and its director follows what it runs;
	// the halted deployment stays halted and assigns nothing new.
	e.mustPost(t, ds[4], ds[4].rep(report.StateCommitted, v2))
	v = e.view(t, dep.ID)
	if v.Status != store.DeployHalted {
		t.Fatalf("a halted deployment moved: %+v", v.Deployment)
	}
	wantStatus(t, v, store.DevCommitted, "d04")
	wantStatus(t, v, store.DevCancelled, ids(ds[5:])...)
	wantDirector(t, e, v2, "d04")
	wantDirector(t, e, v1, ids(ds[5:])...)
}
