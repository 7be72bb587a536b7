package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ztota/ztota/internal/report"
)

const (
	fileHeader = "ztota-outbox-v1\n"
	recHeader  = 8 // length and CRC
	// MaxRecord bounds a record body: a report body with the largest id,
	// payload and signature, or an ack body of maxAckIDs full-length ids
	// (whichever is larger).
	MaxRecord = 1 + 1 + 255 + 2 + report.MaxPayload + 1 + 255
	maxAckIDs = 32 // ids per 'A' record: 32 × 256 + 3 < MaxRecord
	maxIDLen  = 255
	maxSigLen = 255

	kindReport = 'R'
	kindAck    = 'A'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errRecord = errors.New("outbox: bad record")

// record is one decoded log record: a report (kind 'R') or acks ('A').
type record struct {
	kind  byte
	entry Entry    // kind 'R'
	acks  []string // kind 'A'
}

// appendReport appends the encoded 'R' record of e to b.
func appendReport(b []byte, e Entry) []byte {
	body := make([]byte, 0, 5+len(e.ID)+len(e.Signed.Payload)+len(e.Signed.Sig))
	body = append(body, kindReport, byte(len(e.ID)))
	body = append(body, e.ID...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(e.Signed.Payload)))
	body = append(body, e.Signed.Payload...)
	body = append(body, byte(len(e.Signed.Sig)))
	body = append(body, e.Signed.Sig...)
	return appendFrame(b, body)
}

// appendAcks appends 'A' records for ids, maxAckIDs to a record.
func appendAcks(b []byte, ids []string) []byte {
	for len(ids) > 0 {
		n := min(len(ids), maxAckIDs)
		body := []byte{kindAck}
		body = binary.BigEndian.AppendUint16(body, uint16(n))
		for _, id := range ids[:n] {
			body = append(body, byte(len(id)))
			body = append(body, id...)
		}
		b = appendFrame(b, body)
		ids = ids[n:]
	}
	return b
}

func appendFrame(b, body []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	return append(b, body...)
}

// checkEntry reports whether e fits the record format.
func checkEntry(e Entry) error {
	switch {
	case len(e.ID) == 0 || len(e.ID) > maxIDLen:
		return fmt.Errorf("%w: id must be 1 to %d bytes", ErrInvalid, maxIDLen)
	case len(e.Signed.Payload) > report.MaxPayload:
		return fmt.Errorf("%w: payload longer than %d bytes", ErrInvalid, report.MaxPayload)
	case len(e.Signed.Sig) > maxSigLen:
		return fmt.Errorf("%w: signature longer than %d bytes", ErrInvalid, maxSigLen)
	}
	return nil
}

// frameLen returns the body length announced by a record header, or an
// error if it is out of bounds.
func frameLen(hdr []byte) (int, error) {
	n := binary.BigEndian.Uint32(hdr)
	if n == 0 || n > MaxRecord {
		return 0, fmt.Errorf("%w: length %d", errRecord, n)
	}
	return int(n), nil
}

// decodeBody checks the CRC and decodes a record body.
func decodeBody(hdr, body []byte) (record, error) {
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
		return record{}, fmt.Errorf("%w: checksum mismatch", errRecord)
	}
	d := decoder{b: body}
	kind := d.byte()
	var r record
	switch kind {
	case kindReport:
		r.kind = kindReport
		r.entry.ID = string(d.bytes(int(d.byte())))
		payload := d.bytes(int(d.uint16()))
		sig := d.bytes(int(d.byte()))
		if d.err == nil {
			r.entry.Signed = report.Signed{Payload: clone(payload), Sig: clone(sig)}
		}
		if r.entry.ID == "" || len(payload) > report.MaxPayload {
			d.fail()
		}
	case kindAck:
		r.kind = kindAck
		n := int(d.uint16())
		if n == 0 || n > maxAckIDs {
			d.fail()
		}
		for i := 0; i < n && d.err == nil; i++ {
			id := string(d.bytes(int(d.byte())))
			if id == "" {
				d.fail()
			}
			r.acks = append(r.acks, id)
		}
	default:
		d.fail()
	}
	if d.err != nil || len(d.b) != 0 {
		return record{}, fmt.Errorf("%w: malformed %q body", errRecord, kind)
	}
	return r, nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// decoder reads big-endian fields; after the first short read it returns
// zero values and keeps err set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errRecord }

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n > len(d.b) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) uint16() uint16 {
	if v := d.bytes(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}
