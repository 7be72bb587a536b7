// Package outbox keeps the device's signed status reports on disk until the
// server has acknowledged them: sent at least once, in the order added, and
// never lost once Add has returned.
//
// # Disk format
//
// The directory holds outbox.log, an append-only log, and outbox.lock, which
// an open Outbox holds locked so that a second process cannot write the same
// log. outbox.log starts with the 16-byte header "ztota-outbox-v1\n",
// followed by records:
//
//	length  uint32, big endian: length of body, 1 to MaxRecord
//	crc     uint32, big endian: CRC-32C (Castagnoli) of body
//	body    length bytes
//
// A body is one of
//
//	'R' idLen:uint8 id payloadLen:uint16 payload sigLen:uint8 sig   a report (report.Signed)
//	'A' count:uint16 count×(idLen:uint8 id)                           acknowledged ids
//
// with every length big endian, ids 1 to 255 bytes and count at least 1; a
// body must be consumed exactly. Pending reports are the 'R' records, in log
// order, whose ids no later 'A' record names.
//
// # Crash safety
//
// Add and Ack write one record (Ack: one write of several 'A' records) and
// fsync before returning. A crash can therefore leave only a torn last
// record; Open drops everything from the first record that is incomplete or
// fails its CRC or decoding, truncates the file there and reports the
// dropped byte count in Dropped. A failed write is truncated away at once.
//
// Compaction rewrites the pending reports into outbox.log.tmp, fsyncs it,
// renames it over outbox.log and fsyncs the directory, so a crash leaves
// either the old or the new log, both complete. It runs when every report is
// acknowledged (the log shrinks to its header), when acknowledged records
// take more space than pending ones, and when Add or Ack would otherwise
// exceed the size bound.
//
// # When full
//
// The log never exceeds the maxBytes given to Open. When a new report does
// not fit even after compaction, Add fails with ErrFull and stores nothing:
// the outbox never drops a report it has accepted. The agent then flushes;
// to keep a terminal report it evicts the oldest progress reports with
// Evict, or waits until the server has taken enough; only progress reports
// are ever dropped, and the gap in seq shows the server that they were.
package outbox
