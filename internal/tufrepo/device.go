package tufrepo

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/strictjson"
)

// DeviceField is the member of "signed" that binds a director timestamp,
// snapshot or targets document to the one device it was issued for. Every
// device's director repository is signed by the same online keys, so
// without it a document recorded from one device verifies on every other
// device; with it, a device refuses another device's documents before it
// compares or stores any of their versions. The shared director root is
// not bound.
const DeviceField = "x-ztota-device"

// maxDeviceFieldLength bounds the device named in DeviceField.
const maxDeviceFieldLength = 128

// Errors of device binding.
var (
	// ErrNotForDevice reports a director document that names another
	// device, or none.
	ErrNotForDevice = errors.New("director metadata was not issued for this device")
	// ErrNotBindable reports an attempt to bind a root document.
	ErrNotBindable = errors.New("only timestamp, snapshot and targets metadata are bound to a device")
)

// BindDevice writes DeviceField into md's signed part; sign md afterwards.
// Root documents cannot be bound (one director root serves every device).
func BindDevice[T metadata.Roles](md *metadata.Metadata[T], device string) error {
	if device == "" || len(device) > maxDeviceFieldLength || !utf8.ValidString(device) {
		return fmt.Errorf("%w: device id %q cannot be bound", ErrMalformed, device)
	}
	var fields *map[string]any
	switch s := any(&md.Signed).(type) {
	case *metadata.TimestampType:
		fields = &s.UnrecognizedFields
	case *metadata.SnapshotType:
		fields = &s.UnrecognizedFields
	case *metadata.TargetsType:
		fields = &s.UnrecognizedFields
	default:
		return fmt.Errorf("%w: %T", ErrNotBindable, md.Signed)
	}
	if *fields == nil {
		*fields = map[string]any{}
	}
	(*fields)[DeviceField] = device
	return nil
}

// BoundDevice returns the device md is bound to ("" when unbound).
func BoundDevice[T metadata.Roles](md *metadata.Metadata[T]) string {
	var fields map[string]any
	switch s := any(&md.Signed).(type) {
	case *metadata.TimestampType:
		fields = s.UnrecognizedFields
	case *metadata.SnapshotType:
		fields = s.UnrecognizedFields
	case *metadata.TargetsType:
		fields = s.UnrecognizedFields
	}
	d, _ := fields[DeviceField].(string)
	return d
}

// maxMetadataDepth bounds the nesting CheckDevice walks; TUF top-level
// metadata nests far less deeply.
const maxMetadataDepth = 32

// CheckDevice reads the raw bytes of a director timestamp, snapshot or
// targets document, before any signature or version is looked at, and
// returns nil only if its signed part names device in DeviceField. It
// refuses, with ErrNotForDevice, a document that names another device or
// none; and with ErrMalformed one that is not a JSON object with a
// "signed" object, or that has duplicate keys (a document must have one
// meaning for this check and for the TUF client that parses it later).
// It proves nothing by itself: the TUF client still verifies the
// signature that covers the field.
func CheckDevice(data []byte, device string) error {
	if device == "" {
		return fmt.Errorf("%w: no device to check against", ErrMalformed)
	}
	if len(data) > MaxMetadataSize {
		return fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), MaxMetadataSize)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: metadata is not UTF-8", ErrMalformed)
	}
	if err := strictjson.CheckKeys(data, maxMetadataDepth); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// Exact member names, as go-tuf reads "signed" and keeps unknown
	// members: a second "Signed" that encoding/json might fold onto the
	// same field is refused rather than guessed at.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for k := range top {
		if k != "signed" && strings.EqualFold(k, "signed") {
			return fmt.Errorf("%w: member %q besides \"signed\"", ErrMalformed, k)
		}
	}
	var signed map[string]json.RawMessage
	if err := json.Unmarshal(top["signed"], &signed); err != nil || signed == nil {
		return fmt.Errorf("%w: no \"signed\" object", ErrMalformed)
	}
	raw, ok := signed[DeviceField]
	if !ok {
		return fmt.Errorf("%w: it names no device (no %q), this is %s", ErrNotForDevice, DeviceField, device)
	}
	var got string
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("%w: %q is not a string", ErrNotForDevice, DeviceField)
	}
	if got != device {
		if len(got) > maxDeviceFieldLength {
			got = got[:maxDeviceFieldLength] + "..."
		}
		return fmt.Errorf("%w: it names device %q, this is %s", ErrNotForDevice, got, device)
	}
	return nil
}
