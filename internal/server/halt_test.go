package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/store"
)

// TestOverlappingDeploymentsAreRefusedUntilHalted: a device in a running
// deployment cannot be put in a second one; halting the first (as an
// operator) cancels it, points the director back and frees the device.
func TestOverlappingDeploymentsAreRefusedUntilHalted(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	e.enroll(t, "dev-a", "hw1", "")
	v1, v2 := e.release(t, "1.0", 1, "hw1"), e.release(t, "2.0", 2, "hw1")
	first := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, v1))
	a := e.api(t, "POST", "/v1/deployments", []byte(fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, v2)))
	if a.code != 409 || !strings.Contains(string(a.body), first.ID) {
		t.Fatalf("second deployment over a running one: %s", a)
	}
	if a := e.api(t, "POST", "/v1/deployments/"+first.ID+"/halt", nil); a.code != 200 {
		t.Fatalf("halt: %s", a)
	}
	d, err := e.Server.Store().Deployment(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.DeployHalted || !strings.Contains(d.Reason, "operator") {
		t.Fatalf("after halt: %+v", d)
	}
	dev, _ := e.Server.Store().Device(ctx, "dev-a")
	if dev.Assigned != "" {
		t.Fatalf("director still assigns %q after the halt", dev.Assigned)
	}
	if a := e.api(t, "POST", "/v1/deployments/"+first.ID+"/halt", nil); a.code != 409 {
		t.Fatalf("halting twice: %s", a)
	}
	e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, v2))
}
