// Package slot keeps A/B installation slots behind the small [Slots]
// interface: stage into the inactive slot, mark it boot-once, boot it with
// a counter, then commit or roll back. [DirSlots] implements it with
// directories for application bundles; bootloader-backed image slots
// (GRUB, U-Boot environment) can implement the same interface.
//
// # Disk layout of directory slots
//
//	root/state.json          current state (below)
//	root/state.json.prev     the state it replaced
//	root/a, root/b           slot trees, extracted by package bundle
//	root/a.manifest.json     what Stage wrote into root/a
//	root/.staging-<slot>     extraction in progress (removed by OpenDir)
//	root/.<file>.tmp         atomic write in progress (removed by OpenDir)
//
// state.json (at most 64 KiB, strict: no unknown or duplicate keys):
//
//	{"version": 1, "active": "a", "pending": "b", "boot_count": 1, "max_boots": 3,
//	 "slots": {"a": {"target": "app/1.0.0/app.tar.gz", "name": "app", "version": "1.0.0",
//	                 "release_counter": 1, "sha256": "<64 hex>", "length": 12345,
//	                 "artifact_type": "bundle", "installed_at": "2025-01-02T03:04:05Z"},
//	           "b": {...}},
//	 "rolled_back": "", "rollback_reason": ""}
//
// <slot>.manifest.json (at most 32 MiB, strict):
//
//	{"version": 1, "slot": "a", "artifact_sha256": "<64 hex>", "entries": [
//	  {"path": "bin", "type": "dir", "mode": 493},
//	  {"path": "bin/app", "type": "file", "mode": 493, "size": 812, "sha256": "<64 hex>"},
//	  {"path": "current", "type": "symlink", "target": "bin/app"}]}
//
// Digests in the manifest are taken from the bytes as they were written,
// not by reading the tree back. Verify walks the tree without following
// symlinks and demands exactly the manifest's entries, modes, sizes,
// digests and link targets, and a manifest whose artifact_sha256 is the
// one recorded in state.json for that slot.
//
// # Crash consistency
//
// Every file is replaced atomically (write a temporary file, fsync it,
// rename, fsync the directory). A state save first copies the state it
// replaces to state.json.prev, then writes state.json, so one of the two
// is whole at every instant; a corrupt state.json is ignored in favour of
// state.json.prev. Stage first saves a state that no longer records the
// inactive slot (so neither file names it as active or pending), then
// removes the old slot, extracts into .staging-<slot>, writes the
// manifest, renames the staging tree into place, and only then saves a
// state recording the new contents. Boot persists the incremented boot
// counter before it returns, and rolls back once the counter passes
// max_boots or the pending slot fails verification. Hence after a crash
// at any instant, OpenDir followed by Boot returns either nothing (no
// slot was ever committed) or a slot whose tree matches its manifest.
//
// One process at a time may use a root.
package slot
