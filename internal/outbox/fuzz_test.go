package outbox

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func FuzzReadRecord(f *testing.F) {
	s, id := signed(f, 1)
	f.Add(appendReport(nil, Entry{ID: id, Signed: s}))
	f.Add(appendAcks(nil, []string{id, "x"}))
	f.Add(appendFrame(nil, []byte{kindAck, 0, 0}))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 'R'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		off := 0
		for {
			rec, n, err := readRecord(r)
			if err != nil {
				return
			}
			// Whatever decodes re-encodes to exactly the bytes read.
			var again []byte
			switch rec.kind {
			case kindReport:
				again = appendReport(nil, rec.entry)
			case kindAck:
				again = appendAcks(nil, rec.acks)
			default:
				t.Fatalf("kind %q", rec.kind)
			}
			if !bytes.Equal(again, data[off:off+n]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
			}
			off += n
		}
	})
}

// FuzzOpen opens arbitrary log contents: Open must repair the log so that a
// second open finds nothing more to drop and the same entries.
func FuzzOpen(f *testing.F) {
	s, id := signed(f, 1)
	f.Add(appendAcks(appendReport(nil, Entry{ID: id, Signed: s}), []string{id}))
	f.Add(appendReport(nil, Entry{ID: id, Signed: s})[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, logName), append([]byte(fileHeader), data...), 0o600)
		o, err := Open(ctx, dir, testMax)
		if err != nil {
			t.Fatal(err)
		}
		first := pendingIDs(t, o)
		o.Close()
		o, err = Open(ctx, dir, testMax)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		if o.Dropped() != 0 || len(pendingIDs(t, o)) != len(first) {
			t.Fatalf("second open dropped %d bytes or changed entries", o.Dropped())
		}
	})
}
