// Package certroot is the certification service's own signed trust root:
// a small document naming the keys the service signs with, separate from
// the OTA repositories' keys, that rotates exactly as a TUF root does.
//
// # Format
//
// A certification root is a go-tuf v2 root document (metadata.Root, signed
// by tufrepo.Sign, updated with tufrepo.VerifyRootUpdate) whose roles are
// exactly:
//
//	root     offline keys; threshold RootThreshold of RootKeys
//	certify  online; signs certificates, rejections and re-inspection results
//	revoke   online; signs revocation lists
//	log      online; signs transparency-log checkpoints (one ed25519 key, as
//	         golang.org/x/mod/sumdb/note requires) and pins the log's
//	         origin in its extra field "origin"
//
// go-tuf's metadata package accepts a root whose role map differs from the
// four TUF top-level roles (it neither requires targets, snapshot and
// timestamp nor refuses other names), so the document reuses go-tuf's
// encoding, canonical-JSON signing and threshold counting unchanged. It is
// never given to a TUF updater. To keep it from being mistaken for an OTA
// root (or the reverse), its signed part carries the extra field
// "ztota_purpose": "certification", covered by the signatures, and Parse
// refuses any root without it or with roles other than the four above.
//
// Parse also insists on one canonical form: every key id is the TUF key id
// of the key it names (so one public key has one id), no key serves two
// roles, every threshold is between 1 and the role's key count, and no
// unknown fields appear anywhere (but the log role's "origin").
//
// # The log origin
//
// The log role names the origin of the transparency log its key speaks for
// ("origin": "ztota-certd/log", the first line of every checkpoint), signed
// with the rest of the root. A verifier checks receipts and checkpoints
// against that pinned origin (PinnedLogVerifierKey), never against the
// origin a checkpoint names itself. Roots made before the origin was pinned
// still parse and still verify as links of a root chain, but LogOrigin
// returns ErrNoLogOrigin for them and receipt checks under them fail: the
// migration is the next root version, which Rotate makes with the origin
// added (RotateOptions.LogOrigin, default DefaultLogOrigin). Once pinned,
// Rotate keeps the origin unchanged.
//
// # Rotation
//
// Root N+1 must have version N+1 and be signed by a threshold of root N's
// root keys and by a threshold of its own root keys (tufrepo.VerifyRootUpdate).
// Root.Update does one step; UpdateChain walks several, accepting expired
// intermediate roots as TUF does and checking only the last one's expiry.
// Rotate makes the next root on disk: it may replace the root keys, change
// the root threshold and re-key any online role.
//
// # Layout
//
// Init makes a trust directory:
//
//	offline/root-<i>.key          root keys (keep offline)
//	online/certify.key            online role keys (the service needs these)
//	online/revoke.key
//	online/log.key
//	root/<N>.root.json            every root version ever made
//	root.json                     the current root
//
// Rotate keeps replaced keys as offline/retired-<N>/root-<i>.key and
// online/<role>.key.retired-<N>, N being the version they last served in.
package certroot
