// Package report defines device status reports, signs them with the device
// key and parses them strictly.
//
// A report is a flat JSON object:
//
//	{"id":"0b6f3f4e-5a8e-4a47-9a3c-1f4b1c9e2d10","device_id":"dev-1","seq":7,
//	 "time":"2024-05-01T12:00:00Z","state":"downloading","target":"app/1.2.0/app.tar",
//	 "version":"1.2.0","progress":40,"detail":""}
//
// id is a random UUID in canonical lower-case form, set once when the report
// is created; it is the idempotency key, so the server stores a report once
// per id however often it is resent. seq increases per device. time is
// RFC 3339. target, version, progress and detail may be omitted. progress is
// 0 to 100 (meaningful in state downloading); detail carries the reason in
// states failed and refused. The mitigation states are degraded (the
// module was restarted under its kernel-enforced degraded profile because
// the certifier's revocation list revokes it; detail names the advisories
// and any kernel feature missing) and recovered (the module runs under its
// normal profile again); each is sent once per transition.
//
// The signed form is
//
//	{"payload": base64(report JSON), "sig": base64(ed25519.Sign(device key, "ztota-report-v1\n" + payload))}
//
// with standard padded base64, and a batch (the body of
// POST /v1/devices/{device}/reports) is a JSON array of signed reports.
//
// Parsing is strict because reports come from devices that may be
// compromised: the payload is at most MaxPayload bytes of valid UTF-8, holds
// exactly one object with no trailing data, only the member names above
// spelled exactly (encoding/json alone would match names case-insensitively),
// no member twice, no null, no nested values, and every field within its
// bound (see the Max constants). The signature is checked before the payload
// is parsed. Verify does not know which device sent the request; the server
// uses VerifyDevice, which also requires device_id to be the authenticated
// device.
//
// Clean makes any text (a health command's coloured output, say) fit a
// field before signing: escape sequences and control characters removed,
// cut at a character boundary within the bound. Terminal tells the states
// that end an update attempt, which a device never drops.
package report
