package tufrepo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/ztota/ztota/internal/keys"
)

// TestDeviceFieldSurvivesSignParseAndVerify: the device field written by
// BindDevice is inside "signed", survives Sign and Parse, is covered by the
// signature (changing it breaks verification), and go-tuf's trusted
// metadata set accepts bound timestamp, snapshot and targets documents.
func TestDeviceFieldSurvivesSignParseAndVerify(t *testing.T) {
	k := gen(t, 1)[0]
	root := rootWith(t, 1, []*keys.Key{k}, 1, k)
	rb, err := Sign(root, k)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	tg := NextTargets(nil, exp)
	if err := BindDevice(tg, "dev-a"); err != nil {
		t.Fatal(err)
	}
	tb, err := Sign(tg, k)
	if err != nil {
		t.Fatal(err)
	}
	sn := NextSnapshot(nil, tg.Signed.Version, tb, exp)
	if err := BindDevice(sn, "dev-a"); err != nil {
		t.Fatal(err)
	}
	sb, err := Sign(sn, k)
	if err != nil {
		t.Fatal(err)
	}
	ts := NextTimestamp(nil, sn.Signed.Version, sb, exp)
	if err := BindDevice(ts, "dev-a"); err != nil {
		t.Fatal(err)
	}
	tsb, err := Sign(ts, k)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"targets": tb, "snapshot": sb, "timestamp": tsb} {
		if err := CheckDevice(data, "dev-a"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := CheckDevice(data, "dev-b"); !errors.Is(err, ErrNotForDevice) {
			t.Fatalf("%s checked for dev-b: %v, want ErrNotForDevice", name, err)
		}
	}
	parsed, err := Parse[metadata.TimestampType](tsb)
	if err != nil {
		t.Fatal(err)
	}
	if got := BoundDevice(parsed); got != "dev-a" {
		t.Fatalf("parsed timestamp is bound to %q", got)
	}
	if err := Verify(root, Timestamp, parsed); err != nil {
		t.Fatalf("bound timestamp does not verify: %v", err)
	}
	// The field is signed: rewriting it breaks the signature.
	parsed.Signed.UnrecognizedFields[DeviceField] = "dev-b"
	if err := Verify(root, Timestamp, parsed); !errors.Is(err, ErrSignature) {
		t.Fatalf("timestamp with a rewritten device verifies: %v", err)
	}
	// go-tuf takes the bound chain as any other.
	tm, err := trustedmetadata.New(rb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tm.UpdateTimestamp(tsb); err != nil {
		t.Fatalf("go-tuf refuses the bound timestamp: %v", err)
	}
	if _, err := tm.UpdateSnapshot(sb, false); err != nil {
		t.Fatalf("go-tuf refuses the bound snapshot: %v", err)
	}
	if _, err := tm.UpdateTargets(tb); err != nil {
		t.Fatalf("go-tuf refuses the bound targets: %v", err)
	}
	if err := BindDevice(root, "dev-a"); !errors.Is(err, ErrNotBindable) {
		t.Fatalf("binding a root: %v, want ErrNotBindable", err)
	}
}

// TestCheckDeviceRefusesUnboundAndAmbiguousDocuments: what is not clearly
// bound to the device is refused, each with its specific error.
func TestCheckDeviceRefusesUnboundAndAmbiguousDocuments(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want error
		msg  string
	}{
		{"unbound", `{"signed":{"_type":"timestamp","version":3},"signatures":[]}`, ErrNotForDevice, "names no device"},
		{"other device", `{"signed":{"_type":"timestamp","x-ztota-device":"dev-b"},"signatures":[]}`, ErrNotForDevice, `names device "dev-b"`},
		{"not a string", `{"signed":{"x-ztota-device":["dev-a"]},"signatures":[]}`, ErrNotForDevice, "not a string"},
		{"case-folded name", `{"signed":{"X-Ztota-Device":"dev-a"},"signatures":[]}`, ErrNotForDevice, "names no device"},
		{"duplicate field", `{"signed":{"x-ztota-device":"dev-b","x-ztota-device":"dev-a"},"signatures":[]}`, ErrMalformed, "duplicate"},
		{"second signed", `{"signed":{"x-ztota-device":"dev-a"},"Signed":{},"signatures":[]}`, ErrMalformed, `"Signed"`},
		{"no signed", `{"signatures":[]}`, ErrMalformed, "signed"},
		{"null signed", `{"signed":null}`, ErrMalformed, "signed"},
		{"not json", `not json`, ErrMalformed, ""},
		{"not utf-8", "{\"signed\":{\"x-ztota-device\":\"dev-\xff\"}}", ErrMalformed, "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDevice([]byte(tc.doc), "dev-a")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CheckDevice = %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
	if err := CheckDevice([]byte(`{"signed":{"x-ztota-device":"dev-a"}}`), "dev-a"); err != nil {
		t.Fatal(err)
	}
}
