package certd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
)

// TestFeedEventsCarrySignedEnvelopes reads GET /v1/events as a follower
// does: every entry carries a DSSE envelope signed with the certify key of
// the service's root whose payload is exactly that entry's event, so a
// follower (the OTA server) never acts on the feed's unsigned fields.
// Before, the feed served bare events and only webhooks were signed.
func TestFeedEventsCarrySignedEnvelopes(t *testing.T) {
	s := newService(t, sourceDir(t), nil)
	submitBytes(t, s, "foo", dpkgStatus("libfoo=1.0-1"), nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/events?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []SignedEvent
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil || len(evs) < 2 {
		t.Fatalf("events: %d %v", len(evs), err)
	}
	root, err := certroot.Trust(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		payload, err := attest.VerifyPayload(root, certroot.RoleCertify, EventPayloadType, e.Envelope, s.now())
		if err != nil {
			t.Fatalf("event %d: %v", e.Seq, err)
		}
		want, _ := json.Marshal(e.Event)
		if string(payload) != string(want) {
			t.Fatalf("event %d: signed payload %s, entry %s", e.Seq, payload, want)
		}
		// Not signed by the revoke key.
		if _, err := attest.VerifyPayload(root, certroot.RoleRevoke, EventPayloadType, e.Envelope, s.now()); err == nil {
			t.Fatalf("event %d verifies under the revoke role", e.Seq)
		}
	}
}
