package tufclient

import (
	"crypto/ed25519"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestFastForwardRecoveredAfterTimestampKeyRotation: an attacker holding
// the timestamp key pushes the timestamp version far ahead; the device
// trusts it, so the repository's honest timestamps (lower versions) are
// refused as rollbacks. The owners rotate the timestamp key in a new root;
// the client then discards the fast-forwarded timestamp (it no longer
// verifies) and accepts the honest one again, as TUF specifies (5.3.11).
func TestFastForwardRecoveredAfterTimestampKeyRotation(t *testing.T) {
	repo := newTestRepo(t)
	c := newClient(t, repo)
	c.init()
	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, out)
	}
	// The attack: a validly signed timestamp at version 1,000,000.
	honest := repo.timestamp.Signed.Version
	repo.timestamp.Signed.Version = 1_000_000
	repo.publish()
	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh of the fast-forwarded timestamp: exit %d: %s", code, out)
	}
	if got := c.version("timestamp"); got != 1_000_000 {
		t.Fatalf("trusted timestamp v%d, want the attacker's 1000000", got)
	}
	// The honest repository publishes its next version: refused as a rollback.
	repo.timestamp.Signed.Version = honest + 1
	repo.publish()
	if code, _ := c.refresh(); code != 1 {
		t.Fatal("an honest but lower timestamp version was accepted while the fast-forwarded one is trusted")
	}
	// Recovery: a new root with a new timestamp key, signed by the root key.
	for _, id := range repo.root.Signed.Roles[metadata.TIMESTAMP].KeyIDs {
		if err := repo.root.Signed.RevokeKey(id, metadata.TIMESTAMP); err != nil {
			t.Fatal(err)
		}
	}
	newTS := newKey(t)
	repo.addKey(metadata.TIMESTAMP, newTS)
	repo.keys[metadata.TIMESTAMP] = newTS
	repo.root.Signed.Version++
	repo.rootKeys = []ed25519.PrivateKey{repo.keys[metadata.ROOT]}
	repo.publishRoot()
	repo.timestamp.Signed.Version = honest + 2
	repo.publish()
	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh after the timestamp key rotation: exit %d: %s", code, out)
	}
	if got := c.version("timestamp"); got != honest+2 {
		t.Fatalf("trusted timestamp v%d after recovery, want the honest v%d", got, honest+2)
	}
}
