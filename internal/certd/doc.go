// Package certd is the software certification service (`ztota certd`): an
// independent third party that inspects submitted artifacts with its own
// verifier against its vulnerability database and answers with a signed
// certificate or a signed rejection.
//
// The parts it joins:
//
//   - inventory: the software inside the artifact, taken from the artifact
//     itself (Go build info, dpkg status), an SBOM only cross-checked;
//   - osvdb: OSV snapshots, indexed by (ecosystem, package);
//   - certpolicy: the versioned policy and its OpenVEX exceptions;
//   - attest and certroot: DSSE/in-toto results and the revocation list,
//     signed with keys under the certifier's own threshold trust root;
//   - translog: every result, revocation list and DB snapshot id appended
//     to a Merkle log with signed checkpoints.
//
// When a vulnerability source changes, the service diffs the records,
// looks up the certified (or revoked) artifacts whose stored inventory
// holds an affected (ecosystem, package) through an index, re-inspects
// only those, publishes signed re-inspection results that name the
// earlier certificate, revokes certificates that now fail (one new
// revocation list version per update) and issues a new certificate, never
// an un-revocation, when a revoked artifact passes again. A new verifier
// version re-inspects every certified artifact from its stored bytes.
//
// Subscribers follow GET /v1/events (long poll) or receive signed webhooks,
// delivered at least once, in order, with idempotent event ids.
package certd
