package server_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/ztota/ztota/internal/tufrepo"
)

// TestTimestampCacheNeverPinsAStaleVersion races device check-ins against
// new director assignments: after every assignment the device must be
// served the timestamp just stored, never one a racing read cached.
func TestTimestampCacheNeverPinsAStaleVersion(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	d := e.enroll(t, "dev-a", "hw1", "")
	targets := []string{e.release(t, "1.0", 1, "hw1"), e.release(t, "2.0", 2, "hw1")}
	served := func() int64 {
		a := e.request(t, d.hc, "GET", "/director/dev-a/timestamp.json", "", nil)
		if a.code != 200 {
			t.Errorf("timestamp: %s", a)
			return 0
		}
		var m struct {
			Signed struct {
				Version int64 `json:"version"`
			} `json:"signed"`
		}
		json.Unmarshal(a.body, &m)
		return m.Signed.Version
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					served()
				}
			}
		}()
	}
	for i := 0; i < 30; i++ {
		dep := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"],"failure_threshold":1}`, targets[i%2]))
		m, err := e.Server.Store().LatestMeta(ctx, "director/dev-a", tufrepo.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		if got := served(); got != m.Version {
			close(stop)
			wg.Wait()
			t.Fatalf("after assignment %d the device is served timestamp %d, the store holds %d", i, got, m.Version)
		}
		if a := e.api(t, "POST", "/v1/deployments/"+dep.ID+"/halt", nil); a.code != 200 {
			t.Fatalf("halt: %s", a)
		}
	}
	close(stop)
	wg.Wait()
}
