package translog

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors of the Log.
var (
	// ErrNotFound is wrapped when an entry or a tree size is beyond the log.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is wrapped when arguments are malformed or out of order.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt is wrapped when the stored log does not agree with itself.
	ErrCorrupt = errors.New("log storage is corrupt")
)

// schema creates the log's tables. Entries and hashes are append-only:
// triggers refuse UPDATE and DELETE so no code path can rewrite history.
const schema = `
CREATE TABLE IF NOT EXISTS translog_entries (
	idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL,
	leaf BLOB NOT NULL, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS translog_hashes (
	id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS translog_entries_no_update BEFORE UPDATE ON translog_entries
	BEGIN SELECT RAISE(ABORT, 'translog entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS translog_entries_no_delete BEFORE DELETE ON translog_entries
	BEGIN SELECT RAISE(ABORT, 'translog entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS translog_hashes_no_update BEFORE UPDATE ON translog_hashes
	BEGIN SELECT RAISE(ABORT, 'translog hashes are append-only'); END;
CREATE TRIGGER IF NOT EXISTS translog_hashes_no_delete BEFORE DELETE ON translog_hashes
	BEGIN SELECT RAISE(ABORT, 'translog hashes are append-only'); END;
`

// Log is a transparency log stored in SQLite. It is safe for concurrent use.
type Log struct {
	db     *sql.DB
	origin string
	signer note.Signer
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	cached signedCheckpoint // latest signed checkpoint
}

type signedCheckpoint struct {
	cp     Checkpoint
	signed []byte
}

// Entry is one logged record.
type Entry struct {
	Index int64
	Kind  string
	Data  []byte
	// Time is when the entry was appended, as the log's clock said. It is
	// informative only: it is not part of the leaf hash.
	Time time.Time
}

// Open opens the log kept in db, creating its tables (all named
// translog_*) if missing. The database may hold other tables too. origin
// names the log in its checkpoints and must equal signer.Name(), so that a
// verifier holding the key knows which log a checkpoint is for.
//
// Open checks that the stored hashes match the number of entries.
func Open(db *sql.DB, origin string, signer note.Signer) (*Log, error) {
	if db == nil {
		return nil, errors.New("translog: open: no database")
	}
	if signer == nil {
		return nil, errors.New("translog: open: no signer")
	}
	if origin == "" || strings.ContainsAny(origin, "\n\r") {
		return nil, fmt.Errorf("translog: open: origin %q must be one non-empty line", origin)
	}
	if origin != signer.Name() {
		return nil, fmt.Errorf("translog: open: origin %q differs from the signer's name %q: the checkpoint key must be named after the log", origin, signer.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("translog: creating tables: %w", err)
	}
	l := &Log{db: db, origin: origin, signer: signer, log: slog.Default(), now: time.Now}
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	var hashes int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id)+1, 0) FROM translog_hashes`).Scan(&hashes); err != nil {
		return nil, fmt.Errorf("translog: open: counting hashes: %w", err)
	}
	if want := tlog.StoredHashCount(size); hashes != want {
		return nil, fmt.Errorf("translog: open: %w: %d entries need %d stored hashes, found %d", ErrCorrupt, size, want, hashes)
	}
	return l, nil
}

// Origin returns the log's name as written in its checkpoints.
func (l *Log) Origin() string { return l.origin }

// SetLogger sets where the HTTP handler logs internal errors.
func (l *Log) SetLogger(lg *slog.Logger) {
	if lg != nil {
		l.log = lg
	}
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Append adds the entry (kind, data) to the log inside the caller's
// transaction and returns its index. The entry, its leaf hash and the new
// tree hashes commit or roll back with the rest of tx, so a record and its
// log entry are never one without the other. The index is derived inside
// tx, so concurrent appends in separate transactions are serialized by
// SQLite's write lock. Open the database with "_txlock=immediate" (as
// package store does) so that a transaction takes that lock when it begins;
// otherwise a transaction that read before appending can fail with
// SQLITE_BUSY and must be retried (the log stays consistent either way).
func (l *Log) Append(ctx context.Context, tx *sql.Tx, kind string, data []byte) (int64, error) {
	if tx == nil {
		return 0, errors.New("translog: append: no transaction")
	}
	if err := ValidKind(kind); err != nil {
		return 0, fmt.Errorf("translog: append: %w: %v", ErrInvalid, err)
	}
	if len(data) > MaxEntrySize {
		return 0, fmt.Errorf("translog: append %s: %w: %d bytes of data, more than %d", kind, ErrInvalid, len(data), MaxEntrySize)
	}
	if data == nil {
		data = []byte{} // the column is NOT NULL
	}
	leaf := LeafHash(kind, data)
	var index int64
	err := tx.QueryRowContext(ctx, `INSERT INTO translog_entries (idx, kind, data, leaf, time)
		SELECT COALESCE(MAX(idx)+1, 0), ?, ?, ?, ? FROM translog_entries RETURNING idx`,
		kind, data, leaf[:], l.now().UnixNano()).Scan(&index)
	if err != nil {
		return 0, fmt.Errorf("translog: append %s: inserting entry: %w", kind, err)
	}
	hashes, err := tlog.StoredHashesForRecordHash(index, leaf, hashReader{ctx: ctx, q: tx})
	if err != nil {
		return 0, fmt.Errorf("translog: append %s at %d: computing tree hashes: %w", kind, index, err)
	}
	first := tlog.StoredHashIndex(0, index)
	q := make([]byte, 0, 64)
	q = append(q, "INSERT INTO translog_hashes (id, hash) VALUES "...)
	args := make([]any, 0, 2*len(hashes))
	for i, h := range hashes {
		if i > 0 {
			q = append(q, ',')
		}
		q = append(q, "(?,?)"...)
		args = append(args, first+int64(i), h[:])
	}
	if _, err := tx.ExecContext(ctx, string(q), args...); err != nil {
		return 0, fmt.Errorf("translog: append %s at %d: storing tree hashes: %w", kind, index, err)
	}
	return index, nil
}

// Size returns the number of committed entries.
func (l *Log) Size(ctx context.Context) (int64, error) {
	return size(ctx, l.db)
}

func size(ctx context.Context, q querier) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM translog_entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("translog: reading size: %w", err)
	}
	return n, nil
}

// Entry returns the entry at index. It checks the stored leaf hash against
// the stored content, so a row changed behind the log's back is reported as
// ErrCorrupt rather than served.
func (l *Log) Entry(ctx context.Context, index int64) (Entry, error) {
	if index < 0 {
		return Entry{}, fmt.Errorf("translog: entry %d: %w: negative index", index, ErrInvalid)
	}
	e := Entry{Index: index}
	var leaf []byte
	var t int64
	err := l.db.QueryRowContext(ctx, `SELECT kind, data, leaf, time FROM translog_entries WHERE idx=?`, index).Scan(&e.Kind, &e.Data, &leaf, &t)
	if errors.Is(err, sql.ErrNoRows) {
		n, serr := l.Size(ctx)
		if serr != nil {
			return Entry{}, serr
		}
		return Entry{}, fmt.Errorf("translog: entry %d: %w (log size %d)", index, ErrNotFound, n)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("translog: reading entry %d: %w", index, err)
	}
	want := LeafHash(e.Kind, e.Data)
	if !bytes.Equal(leaf, want[:]) {
		return Entry{}, fmt.Errorf("translog: entry %d: %w: stored leaf hash does not match the stored kind and data", index, ErrCorrupt)
	}
	stored, err := hashReader{ctx: ctx, q: l.db}.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
	if err != nil {
		return Entry{}, fmt.Errorf("translog: entry %d: %w", index, err)
	}
	if stored[0] != want {
		return Entry{}, fmt.Errorf("translog: entry %d: %w: tree leaf hash does not match the stored kind and data", index, ErrCorrupt)
	}
	e.Time = time.Unix(0, t).UTC()
	return e, nil
}

// TreeHash returns the root hash of the tree of the first size entries.
func (l *Log) TreeHash(ctx context.Context, size int64) (tlog.Hash, error) {
	if err := l.checkSize(ctx, size); err != nil {
		return tlog.Hash{}, fmt.Errorf("translog: tree hash: %w", err)
	}
	h, err := tlog.TreeHash(size, hashReader{ctx: ctx, q: l.db})
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("translog: tree hash of size %d: %w", size, err)
	}
	return h, nil
}

// checkSize checks 0 <= size <= the committed size.
func (l *Log) checkSize(ctx context.Context, treeSize int64) error {
	if treeSize < 0 {
		return fmt.Errorf("%w: negative tree size %d", ErrInvalid, treeSize)
	}
	n, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if treeSize > n {
		return fmt.Errorf("%w: tree size %d is beyond the log's size %d", ErrNotFound, treeSize, n)
	}
	return nil
}

// Checkpoint returns a signed checkpoint of the current tree. The latest
// signed checkpoint is cached, so repeated calls at the same size sign once.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	sc, err := l.checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(sc.signed), nil
}

func (l *Log) checkpoint(ctx context.Context) (signedCheckpoint, error) {
	n, err := l.Size(ctx)
	if err != nil {
		return signedCheckpoint{}, err
	}
	l.mu.Lock()
	cached := l.cached
	l.mu.Unlock()
	if cached.signed != nil && cached.cp.Size == n {
		return cached, nil
	}
	// Hashes of committed entries never change, so the tree hash of size n
	// stays right however many appends commit meanwhile.
	h, err := l.TreeHash(ctx, n)
	if err != nil {
		return signedCheckpoint{}, err
	}
	cp := Checkpoint{Origin: l.origin, Size: n, Hash: h}
	signed, err := signCheckpoint(cp, l.signer)
	if err != nil {
		return signedCheckpoint{}, err
	}
	sc := signedCheckpoint{cp: cp, signed: signed}
	l.mu.Lock()
	if l.cached.signed == nil || l.cached.cp.Size < n {
		l.cached = sc
	}
	l.mu.Unlock()
	return sc, nil
}

// InclusionProof returns the proof that the entry at index is in the tree
// of size treeSize.
func (l *Log) InclusionProof(ctx context.Context, index, treeSize int64) (tlog.RecordProof, error) {
	if index < 0 || index >= treeSize {
		return nil, fmt.Errorf("translog: inclusion proof: %w: index %d is not in a tree of size %d", ErrInvalid, index, treeSize)
	}
	if err := l.checkSize(ctx, treeSize); err != nil {
		return nil, fmt.Errorf("translog: inclusion proof: %w", err)
	}
	p, err := tlog.ProveRecord(treeSize, index, hashReader{ctx: ctx, q: l.db})
	if err != nil {
		return nil, fmt.Errorf("translog: inclusion proof of %d in %d: %w", index, treeSize, err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size newSize extends
// the tree of size oldSize. The proof from the empty tree is empty.
func (l *Log) ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("translog: consistency proof: %w: old size %d must be between 0 and new size %d", ErrInvalid, oldSize, newSize)
	}
	if err := l.checkSize(ctx, newSize); err != nil {
		return nil, fmt.Errorf("translog: consistency proof: %w", err)
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, hashReader{ctx: ctx, q: l.db})
	if err != nil {
		return nil, fmt.Errorf("translog: consistency proof %d→%d: %w", oldSize, newSize, err)
	}
	return p, nil
}

// Receipt returns the proof that the committed entry at index is in the
// log: the current signed checkpoint and the inclusion proof against it.
func (l *Log) Receipt(ctx context.Context, index int64) (Receipt, error) {
	sc, err := l.checkpoint(ctx)
	if err != nil {
		return Receipt{}, err
	}
	if index < 0 || index >= sc.cp.Size {
		return Receipt{}, fmt.Errorf("translog: receipt: entry %d: %w (log size %d)", index, ErrNotFound, sc.cp.Size)
	}
	p, err := l.InclusionProof(ctx, index, sc.cp.Size)
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{Index: index, Checkpoint: sc.signed, Proof: p}, nil
}

// hashReader reads stored hashes through a transaction or the database.
type hashReader struct {
	ctx context.Context
	q   querier
}

// hashReadChunk bounds the number of parameters of one query.
const hashReadChunk = 256

// ReadHashes implements tlog.HashReader.
func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	found := make(map[int64]tlog.Hash, len(indexes))
	for start := 0; start < len(indexes); start += hashReadChunk {
		chunk := indexes[start:min(start+hashReadChunk, len(indexes))]
		q := "SELECT id, hash FROM translog_hashes WHERE id IN (?" + strings.Repeat(",?", len(chunk)-1) + ")"
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if err := r.query(q, args, found); err != nil {
			return nil, err
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, id := range indexes {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("%w: stored hash %d is missing", ErrCorrupt, id)
		}
		out[i] = h
	}
	return out, nil
}

func (r hashReader) query(q string, args []any, found map[int64]tlog.Hash) error {
	rows, err := r.q.QueryContext(r.ctx, q, args...)
	if err != nil {
		return fmt.Errorf("reading stored hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return fmt.Errorf("reading stored hashes: %w", err)
		}
		if len(b) != tlog.HashSize {
			return fmt.Errorf("%w: stored hash %d has %d bytes", ErrCorrupt, id, len(b))
		}
		found[id] = tlog.Hash(b)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading stored hashes: %w", err)
	}
	return nil
}
