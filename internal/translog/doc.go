// Package translog is the transparency log of ztota's certification
// service. Every certificate, rejection, re-inspection result, revocation
// list and vulnerability-database snapshot id the service issues is
// appended as an entry. The log publishes signed checkpoints and Merkle
// proofs, so anyone can check that what the certifier signed is in the log
// and that the log only grows: the certifier cannot show one device a
// certificate and hide it from everyone else, nor quietly drop a rejection.
//
// # Entries and the leaf encoding
//
// An entry is a kind (1 to MaxKindLength characters of [a-z0-9.-], see
// ValidKind and the Kind* constants) and opaque data (at most MaxEntrySize
// bytes, for a certificate: the exact signed envelope bytes). The log's
// Merkle tree is the RFC 6962 tree built by golang.org/x/mod/sumdb/tlog;
// the leaf for an entry is
//
//	LeafData = kind || "\n" || data
//	LeafHash = tlog.RecordHash(LeafData) = SHA-256(0x00 || kind || "\n" || data)
//
// A kind never contains a newline, so the split between kind and data is
// unambiguous: no two different (kind, data) pairs share a leaf. The time
// an entry was appended is stored beside it but is not hashed.
//
// Append runs inside the caller's database transaction: the record the
// service keeps (a certificate row, say) and its log entry commit together
// or not at all. The log's tables are named translog_*; triggers refuse
// any UPDATE or DELETE of them.
//
// # Checkpoints
//
// A checkpoint is the C2SP tlog-checkpoint body
//
//	<origin>\n
//	<size in decimal>\n
//	<root hash in standard base64>\n
//
// signed as a note (golang.org/x/mod/sumdb/note) with an ed25519 key, for
// example:
//
//	ztota-certd.example/log
//	1024
//	Xt9mZ...base64...=
//
//	— ztota-certd.example/log AbCdEf...signature...
//
// The origin names the log and equals the name of the key that signs it
// (Open refuses anything else, VerifyCheckpoint checks it), so a verifier
// key "<origin>+<hash>+<key>" pins both the key and the log. The body
// carries no extension lines; a parser here refuses them. Other signature
// lines (witness cosignatures) may follow the log's and are ignored. The
// log signs a checkpoint of its current size on demand and caches the
// latest one.
//
// # Checking a certificate's presence
//
// A verifier holds the log's verifier key (from SignerFromKey, the text
// "<origin>+<hash>+<base64 key>"; parse it with note.NewVerifier) and, to
// detect forks, the last checkpoint it accepted. To check a certificate:
//
//  1. Obtain the entry index and an inclusion proof against a signed
//     checkpoint: either a Receipt shipped with the certificate (from
//     Log.Receipt) or, online, Client.Checkpoint and Client.InclusionProof.
//  2. VerifyCheckpoint(signed, verifier): the note is signed by the log key
//     and its origin is the log's.
//  3. VerifyInclusion(cp, index, kind, certificateBytes, proof): recomputes
//     LeafHash(kind, certificateBytes) and walks the proof up to cp's root.
//     VerifyReceipt does 2 and 3 in one call.
//  4. Check that cp is consistent with the checkpoint the verifier accepted
//     before (VerifyConsistency with a proof from Client.ConsistencyProof,
//     or Client.Update, which fetches the newest checkpoint and proof and
//     reports a *MisbehaviourError, "log misbehaviour: ...", when the log
//     shrank, forked or cannot prove it only grew).
//
// Steps 2 and 3 need no database and no network. A witness runs step 4
// periodically and publishes the checkpoints it accepted, so that a log
// showing different histories to different verifiers is caught.
//
// # HTTP
//
// Log.Handler serves GET checkpoint, entries/{index},
// proof/inclusion?index=&size= and proof/consistency?old=&new=; Client
// reads them with bounded responses and timeouts and verifies what it reads.
package translog
