// Package tufclient builds bounded TUF clients (go-tuf v2 updaters) for the
// device agent, and implements the `ztota tuf-client` entry point that the
// public TUF conformance suite drives.
//
// # Updaters
//
// NewUpdater returns a fresh go-tuf updater for one repository; an updater
// refreshes once, so callers make a new one per refresh. Every download goes
// through the caller's *http.Client (the agent's signs requests), bound to
// the caller's context, tried exactly once, with a whole-request timeout
// (DefaultHTTPTimeout when the client sets none) and at most three
// redirects, never from https to http. Every metadata file is
// read up to its Limits length and no further. Retrying belongs to the
// caller's refresh loop, which has its own backoff.
//
// NewMultiRepo assembles a TAP 4 multi-repository client (for Uptane: the
// image and the director repository) from such updaters, because go-tuf's
// own constructor cannot take a custom fetcher.
//
// # Disk format
//
// A metadata directory belongs to exactly one repository and holds the
// metadata the client trusts, under non-versioned names:
//
//	root.json  timestamp.json  snapshot.json  targets.json  <escaped role>.json
//	targets/   (default target directory when Options.TargetsDir is empty)
//
// The trusted root is the newer (by version) of Options.TrustedRoot and a
// root.json already in the metadata directory that verifies against itself,
// so a root rotation survives restarts. Downloaded target files are named by
// the URL path-escaped target path: "app/1.0/fw.bin" is stored as
// "app%2F1.0%2Ffw.bin" in the target directory, which must differ from the
// metadata directory (a target called "root.json" would otherwise replace
// the trusted root).
//
// # Wire format
//
// Under the metadata URL the client fetches N.root.json (N = trusted
// version + 1, until a 404), timestamp.json, V.snapshot.json and
// V.targets.json (consistent snapshots). Targets are fetched under the
// targets URL as <dir>/<hex sha256>.<base name>.
//
// With Options.Device set (the agent's director repository), every document
// fetched under the metadata URL other than N.root.json must name that
// device in the member "x-ztota-device" of "signed" (tufrepo.CheckDevice);
// anything else fails the download with tufrepo.ErrNotForDevice before
// go-tuf parses, compares or stores it, so another device's director
// metadata never changes what this device trusts. Plain repositories (the
// image repository, the conformance entry point) leave Device empty.
//
// The repository map given to NewMultiRepo is TAP 4 JSON, read strictly
// (unknown fields refused, at most MaxRepoMapLength bytes):
//
//	{"repositories": {"image": ["https://ota/image"], "director": ["https://ota/director/dev-1"]},
//	 "mapping": [{"paths": ["*/*/*"], "repositories": ["image", "director"],
//	              "threshold": 2, "terminating": true}]}
//
// Paths are filepath.Match patterns, whose '*' does not cross '/': "*/*/*"
// covers the <name>/<version>/<file> target paths.
//
// # The conformance entry point
//
// Command and Main implement the client-under-test protocol of the TUF
// conformance suite (CLIENT-CLI.md there):
//
//	tuf-client --metadata-dir DIR init ROOT_FILE
//	tuf-client --metadata-dir DIR --metadata-url URL refresh
//	tuf-client --metadata-dir DIR --metadata-url URL --target-name P [--target-name P2]
//	           --target-base-url URL --target-dir DIR download
//
// exiting 0 on success and 1 on any failure. The suite fakes the clock with
// libfaketime, which a Go binary does not see (Go reads the clock without
// libc), so the entry point reads the FAKETIME environment variable that
// the faketime wrapper sets ("+18d", "-3600", "@2024-05-01 10:00:00",
// "2024-05-01 10:00:00"; see ParseFakeTime) and uses it as the reference
// time for expiry checks. Only this entry point does so: the agent never
// reads FAKETIME.
package tufclient
