// Package devauth signs and verifies device HTTP requests.
//
// After enrollment every device request carries three headers:
//
//	Ztota-Device:    <device id>
//	Ztota-Time:      <unix seconds, decimal, no sign, at most 19 digits>
//	Ztota-Signature: base64(ed25519.Sign(device key, canonical))
//
// where canonical is the UTF-8 text (lines joined by "\n", no trailing newline)
//
//	ztota-request-v1
//	<device id>
//	<METHOD>
//	<request URI: escaped path and raw query, exactly as sent on the wire>
//	<unix seconds, as in Ztota-Time>
//	<lower-case hex sha256 of the body>
//
// For example a device "dev-1" posting the body "[]" at time 1700000000 to
// /v1/devices/dev-1/reports?x=1 signs
//
//	ztota-request-v1
//	dev-1
//	POST
//	/v1/devices/dev-1/reports?x=1
//	1700000000
//	4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945
//
// The device id is part of the signed text, so a signature made for one
// device id never verifies for another even if two devices shared a key.
// A device id is 1 to 128 bytes of [A-Za-z0-9._-] (see ValidDeviceID).
//
// The server (Verify) accepts a clock skew of at most MaxSkew in either
// direction, reads at most a bounded body, and verifies the signature with
// the key registered for the claimed device. A ReplayGuard refuses a second
// use of the same non-GET request signature while it could still verify,
// with one bounded window per device, so that a device filling its window
// is refused alone.
// Which URLs a device may touch (only those under its own id) is the
// server's policy, decided from the device id Verify returns.
package devauth
