// Package bench measures ztota against references taken in the same run:
// check-ins per second of the real server against a bare net/http handler,
// install throughput against a raw write and fsync of the same bytes, and
// the agent's resident memory against a trivial Go process. Machines are
// noisy, so every figure is printed next to its reference as a ratio, and
// no test asserts a timing; the tests only check that each measurement path
// does what it claims (every check-in answered 304, the install committed).
//
// # Figures table
//
// [WriteTable] prints one row per [Figure], tab-aligned:
//
//	figure                 value          reference                 ref value      ratio  goal          met
//	check-ins (304)        5210 req/s     bare net/http 304         9800 req/s     0.53   ratio ≥ 0.50  yes
//	agent idle RSS         11.2 MB        trivial Go process RSS    1.9 MB         5.89   ≤ 20.0 MB     yes
//
// ratio is value/reference; goal is either a lower bound on the ratio or
// an upper bound on the value; met is "yes", "no" or "-" without a goal.
//
// # /proc/PID/status
//
// [ParseStatus] reads the Linux status file format: lines "Key:\tvalue",
// of which it takes VmRSS, VmHWM, RssAnon and RssFile, written as
// "<decimal> kB". The input is bounded by [MaxStatusSize]; VmRSS and VmHWM
// must be present, and no field may appear twice.
//
// # Script bundle
//
// [WriteScriptBundle] writes an uncompressed tar: "bin/" (dir, 0755),
// "bin/app" (0755, a shell script that stays up until signalled and
// answers "health" with exit 0), "VERSION" (0644) and "padding" (0644,
// incompressible pseudo-random bytes from a seeded ChaCha8 stream).
package bench
