// Package e2e holds end-to-end and crash-consistency tests that run the
// real ztota binary: the server, device agents and the operator commands
// are separate processes speaking HTTP on loopback, and agents are killed
// with SIGKILL at named install steps. The package has no code of its own
// beyond this comment; everything lives in its tests.
//
// What the tests rely on, as the other packages build it:
//
//   - "ztota server --listen 127.0.0.1:0" logs one line
//     "msg=serving addr=HOST:PORT" on stderr once it listens, and writes
//     the first admin token to DATA/admin.token.
//   - "ztota release" prints "released TARGET (sha256 HEX, N bytes) ...".
//   - "ztota devices list" prints a table DEVICE HARDWARE STATE INSTALLED
//     ASSIGNED LAST-SEEN; "ztota devices history DEV --json" prints the
//     stored reports as a JSON array ordered by seq.
//   - An agent started with ZTOTA_TEST_HALT_AT=STEP (downloaded, staged,
//     pending, booted, healthy, committed) prints "ZTOTA-HALTED STEP" on
//     stderr on reaching that step and stops still, so that the test can
//     kill it exactly there. The module it supervises runs in its own
//     process group and dies with the agent (parent-death signal).
//   - The agent keeps a partial download in DATA/download/SHA256 and
//     resumes it with "Range: bytes=N-" where N is the file's size.
//
// The tests are skipped with -short.
package e2e
