package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestImageTargetsDroppingARunningDeploymentsTargetAreRefused performs a
// validly signed image targets document that no longer lists the target
// a running deployment assigns (an integrator re-signing without an old
// release). Stored, it made every device of the deployment refuse its
// director ("director and image repository disagree": no target) without
// naming the target, so the deployment waited for ever. The server now
// answers 409 naming the deployment, stores nothing, and takes the same
// document once the deployment is halted.
func TestImageTargetsDroppingARunningDeploymentsTargetAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	e.enroll(t, "dev-a", "hw1", "fleet")
	v1 := e.release(t, "1.0", 1, "hw1")
	dep := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, v1))
	before, err := e.Server.Store().LatestMeta(ctx, "image", tufrepo.Targets)
	if err != nil {
		t.Fatal(err)
	}
	doc := e.nextTargets(t, e.targetsKey(t), func(m *metadata.Metadata[metadata.TargetsType]) {
		delete(m.Signed.Targets, v1)
	})
	a := e.api(t, "POST", "/v1/image/targets", doc)
	wantRefused(t, "targets without the running deployment's target", a, http.StatusConflict)
	if !strings.Contains(a.errMsg(), dep.ID) || !strings.Contains(a.errMsg(), v1) {
		t.Errorf("message %q does not name the deployment and its target", a.errMsg())
	}
	if m, _ := e.Server.Store().LatestMeta(ctx, "image", tufrepo.Targets); m.Version != before.Version {
		t.Fatalf("image targets version %d stored, want %d kept", m.Version, before.Version)
	}

	if _, err := e.Admin.Halt(ctx, dep.ID); err != nil {
		t.Fatal(err)
	}
	if v := e.view(t, dep.ID); v.Status != store.DeployHalted {
		t.Fatalf("deployment %s after the halt", v.Status)
	}
	if a := e.api(t, "POST", "/v1/image/targets", doc); a.code != http.StatusCreated {
		t.Fatalf("the same document after the halt: %s", a)
	}
}
