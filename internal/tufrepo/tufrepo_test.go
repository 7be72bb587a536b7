package tufrepo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
)

func gen(t *testing.T, n int) []*keys.Key {
	var out []*keys.Key
	for i := 0; i < n; i++ {
		k, err := keys.Generate("")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

func rootWith(t *testing.T, version int64, rootKeys []*keys.Key, threshold int, other *keys.Key) *metadata.Metadata[metadata.RootType] {
	r, err := NewRoot(version, map[string]RoleSpec{
		Root: {Keys: rootKeys, Threshold: threshold}, Targets: {Keys: []*keys.Key{other}, Threshold: 1},
		Snapshot: {Keys: []*keys.Key{other}, Threshold: 1}, Timestamp: {Keys: []*keys.Key{other}, Threshold: 1},
	}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRootUpdateNeedsOldAndNewThresholds(t *testing.T) {
	old, next, other := gen(t, 2), gen(t, 2), gen(t, 1)[0]
	v1 := rootWith(t, 1, old, 2, other)
	if _, err := Sign(v1, old...); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		version int64
		signers []*keys.Key
		ok      bool
	}{
		{"old and new thresholds", 2, append(append([]*keys.Key{}, old...), next...), true},
		{"only new keys", 2, next, false},
		{"one old key (below threshold)", 2, append([]*keys.Key{old[0]}, next...), false},
		{"only old keys", 2, old, false},
		{"skips a version", 3, append(append([]*keys.Key{}, old...), next...), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v2 := rootWith(t, c.version, next, 2, other)
			if _, err := Sign(v2, c.signers...); err != nil {
				t.Fatal(err)
			}
			err := VerifyRootUpdate(v1, v2)
			if (err == nil) != c.ok {
				t.Fatalf("VerifyRootUpdate: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestNewRootRefusesBadThresholds(t *testing.T) {
	k := gen(t, 1)
	for _, th := range []int{0, 2} {
		_, err := NewRoot(1, map[string]RoleSpec{Root: {Keys: k, Threshold: th}, Targets: {Keys: k, Threshold: 1},
			Snapshot: {Keys: k, Threshold: 1}, Timestamp: {Keys: k, Threshold: 1}}, time.Now())
		if err == nil {
			t.Fatalf("threshold %d of 1 key accepted", th)
		}
	}
}

func TestSnapshotAndTimestampChainVersionsAndHashes(t *testing.T) {
	k := gen(t, 1)[0]
	tg := NextTargets(nil, time.Now().Add(time.Hour))
	tb, _ := Sign(tg, k)
	s1 := NextSnapshot(nil, tg.Signed.Version, tb, time.Now().Add(time.Hour))
	s2 := NextSnapshot(s1, tg.Signed.Version, tb, time.Now().Add(time.Hour))
	if s2.Signed.Version != s1.Signed.Version+1 {
		t.Fatalf("snapshot versions %d then %d", s1.Signed.Version, s2.Signed.Version)
	}
	if err := s2.Signed.Meta["targets.json"].VerifyLengthHashes(tb); err != nil {
		t.Fatalf("snapshot does not pin the targets bytes: %v", err)
	}
	sb, _ := Sign(s2, k)
	ts := NextTimestamp(nil, s2.Signed.Version, sb, time.Now().Add(time.Hour))
	if err := ts.Signed.Meta["snapshot.json"].VerifyLengthHashes(append(sb, ' ')); err == nil {
		t.Fatal("timestamp accepted other snapshot bytes")
	}
}

func TestCustomMetadataIsStrict(t *testing.T) {
	good := ImageMeta{Name: "app", Version: "1.0.0", ReleaseCounter: 1, HardwareIDs: []string{"b"}, Module: "app", ArtifactType: ArtifactBundle}
	tf, err := TargetFile("app/1.0.0/a.tar", 10, make([]byte, 32), ImageCustom(good))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseImageMeta(tf); err != nil || got.Name != "app" {
		t.Fatalf("ParseImageMeta: %+v, %v", got, err)
	}
	for name, raw := range map[string]string{
		"unknown field":    `{"ztota":{"name":"app","version":"1","release_counter":1,"hardware_ids":["b"],"module":"app","artifact_type":"bundle","x":1}}`,
		"missing ztota":    `{"other":{}}`,
		"path traversal":   `{"ztota":{"name":"../app","version":"1","release_counter":1,"hardware_ids":["b"],"module":"app","artifact_type":"bundle"}}`,
		"no hardware":      `{"ztota":{"name":"app","version":"1","release_counter":1,"hardware_ids":[],"module":"app","artifact_type":"bundle"}}`,
		"bad type":         `{"ztota":{"name":"app","version":"1","release_counter":1,"hardware_ids":["b"],"module":"app","artifact_type":"image"}}`,
		"negative counter": `{"ztota":{"name":"app","version":"1","release_counter":-1,"hardware_ids":["b"],"module":"app","artifact_type":"bundle"}}`,
		"trailing":         `{"ztota":{"name":"app","version":"1","release_counter":1,"hardware_ids":["b"],"module":"app","artifact_type":"bundle"}} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			rm := []byte(raw)
			tf.Custom = (*jsonRaw)(&rm)
			if _, err := ParseImageMeta(tf); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseImageMeta(%s): %v, want ErrMalformed", raw, err)
			}
		})
	}
	if _, err := ParseDirectorMeta(&metadata.TargetFiles{}); err == nil || !strings.Contains(err.Error(), "custom") {
		t.Fatalf("director meta without custom: %v", err)
	}
}
