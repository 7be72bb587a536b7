// Package fetch downloads one artifact whose length and SHA-256 digest are
// already known from signed TUF metadata, straight into a file of the
// inactive slot area, hashing while writing.
//
// Nothing a mirror says is trusted: mirrors only move bytes, and the bytes are
// accepted when, and only when, exactly Want.Length of them hash to
// Want.SHA256. Everything a mirror controls is bounded: the bytes read (never
// more than Want.Length, plus one probe byte to detect endless data), the
// transfer rate (Options.MinRate over Options.RateWindow), the whole download
// time (Options.Deadline) and the number of attempts (Options.MaxAttempts).
//
// # Wire format
//
// Each attempt is one HTTP GET of a mirror URL with
//
//	Accept-Encoding: identity
//	Range: bytes=<n>-        (only when the destination already holds n > 0 bytes)
//
// plus whatever Options.Header adds (for example signed-request headers).
// Responses are read as follows:
//
//	200 OK              the whole artifact from byte 0; a held prefix is discarded (truncate)
//	206 Partial Content Content-Range must be "bytes <n>-<end>/<total>" with end < Length
//	                    and total equal to Length (or "*"); otherwise the attempt fails
//	416                 the held prefix is discarded and the GET is repeated once without Range
//	408, 429, 5xx       transient: retried (next mirror, then back off)
//	other 4xx, and 1xx or 3xx left over after the client's own redirect handling:
//	                    the mirror is dropped for the rest of the download
//
// A declared Content-Length larger than the bytes still missing fails the
// attempt before any body byte is read (ErrTooLong); a body that goes on
// past Want.Length is cut there (ErrTooLong). Either drops the mirror.
//
// # Disk format
//
// The destination file holds a prefix of the artifact and nothing else; there
// is no sidecar state. Its size is the resume offset: an interrupted download
// leaves the bytes it had written, and the next Download hashes them (from
// the open descriptor) and asks for the rest. A download that ends with a
// digest mismatch truncates the file to zero bytes, so that nothing
// half-verified is kept. A successful download is fsynced before Download
// returns.
//
// # Errors
//
// Transient causes (network errors, 5xx, 408, 429, ErrSlow, ErrShort) are
// retried across mirrors; a mirror that sends the wrong bytes from offset 0,
// sends too many, or answers a 4xx is dropped. When the attempts run out, or
// every mirror has been dropped, Download returns a *MirrorErrors that matches
// ErrAllMirrorsFailed and the last cause; IsTransient tells whether trying
// again later may help.
package fetch
