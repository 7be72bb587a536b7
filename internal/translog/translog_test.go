package translog_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/translog"
)

// proofSizes returns the tree sizes at which every index is proved: all
// sizes for a small log, a spread including powers of two around the end
// for a large one.
func proofSizes(n int) []int {
	if n <= 16 {
		var s []int
		for i := 1; i <= n; i++ {
			s = append(s, i)
		}
		return s
	}
	s := []int{1, 2, 3, n / 2, 512, 513, n - 1, n}
	s = slices.DeleteFunc(s, func(x int) bool { return x < 1 || x > n })
	slices.Sort(s)
	return slices.Compact(s)
}

func TestAppendedEntriesAreProvedAtEverySize(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := testCtx(t)
			k := newKey(t, testOrigin)
			db := openDB(t, "")
			l := newLog(t, db, k)
			recs := make([]rec, n)
			for i := range recs {
				recs[i] = mkRec("a", i)
			}
			perTx := 1
			if n > 100 {
				perTx = 100
			}
			appendAll(t, ctx, l, db, recs, perTx)

			cp, _ := signedAt(t, ctx, l, k)
			leaves := refLeaves(recs)
			if cp.Origin != testOrigin || cp.Size != int64(n) || cp.Hash != refRoot(leaves) {
				t.Fatalf("checkpoint %+v, want size %d root %s", cp, n, refRoot(leaves))
			}
			for i, r := range recs {
				if i%97 != 0 && n > 100 {
					continue
				}
				e, err := l.Entry(ctx, int64(i))
				if err != nil || e.Kind != r.kind || !bytes.Equal(e.Data, r.data) || e.Index != int64(i) {
					t.Fatalf("entry %d: %+v %v", i, e, err)
				}
			}
			for _, size := range proofSizes(n) {
				h, err := l.TreeHash(ctx, int64(size))
				if err != nil {
					t.Fatal(err)
				}
				if h != refRoot(leaves[:size]) {
					t.Fatalf("tree hash at size %d differs from the RFC 6962 reference", size)
				}
				at := translog.Checkpoint{Origin: testOrigin, Size: int64(size), Hash: h}
				for i := 0; i < size; i++ {
					p, err := l.InclusionProof(ctx, int64(i), int64(size))
					if err != nil {
						t.Fatal(err)
					}
					if err := translog.VerifyInclusion(at, int64(i), recs[i].kind, recs[i].data, p); err != nil {
						t.Fatalf("entry %d at size %d: %v", i, size, err)
					}
				}
			}
			if _, err := l.InclusionProof(ctx, int64(n), int64(n)+1); !errors.Is(err, translog.ErrNotFound) {
				t.Errorf("proof beyond the log: %v, want ErrNotFound", err)
			}
			if _, err := l.Entry(ctx, int64(n)); !errors.Is(err, translog.ErrNotFound) {
				t.Errorf("entry beyond the log: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestTamperingIsDetected(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	recs := make([]rec, 7)
	for i := range recs {
		recs[i] = mkRec("t", i)
	}
	appendAll(t, ctx, l, db, recs, 7)
	cp, signed := signedAt(t, ctx, l, k)
	const idx = 3
	proof, err := l.InclusionProof(ctx, idx, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := translog.VerifyInclusion(cp, idx, recs[idx].kind, recs[idx].data, proof); err != nil {
		t.Fatalf("honest proof: %v", err)
	}

	flipped := bytes.Clone(recs[idx].data)
	flipped[0] ^= 1
	badProof := slices.Clone(proof)
	badProof[1][5] ^= 0x80
	badCP := cp
	badCP.Hash[0] ^= 1
	cases := map[string]func() error{
		"data bit flipped": func() error { return translog.VerifyInclusion(cp, idx, recs[idx].kind, flipped, proof) },
		"data appended": func() error {
			return translog.VerifyInclusion(cp, idx, recs[idx].kind, append(bytes.Clone(recs[idx].data), 0), proof)
		},
		"other kind": func() error { return translog.VerifyInclusion(cp, idx, "certificatf", recs[idx].data, proof) },
		// Moving the kind/data boundary must change the leaf.
		"kind boundary moved": func() error {
			return translog.VerifyInclusion(cp, idx, recs[idx].kind+"x", recs[idx].data[1:], proof)
		},
		"other index":        func() error { return translog.VerifyInclusion(cp, idx+1, recs[idx].kind, recs[idx].data, proof) },
		"proof hash flipped": func() error { return translog.VerifyInclusion(cp, idx, recs[idx].kind, recs[idx].data, badProof) },
		"proof truncated": func() error {
			return translog.VerifyInclusion(cp, idx, recs[idx].kind, recs[idx].data, proof[:len(proof)-1])
		},
		"proof extended": func() error {
			return translog.VerifyInclusion(cp, idx, recs[idx].kind, recs[idx].data, append(slices.Clone(proof), tlog.Hash{}))
		},
		"root changed": func() error { return translog.VerifyInclusion(badCP, idx, recs[idx].kind, recs[idx].data, proof) },
		// A changed size alone may leave the proof's path the same (7 and 8
		// split alike at index 3); the signature binds size to root, which
		// the signed-checkpoint checks below cover.
		"index beyond tree": func() error { return translog.VerifyInclusion(cp, 7, recs[idx].kind, recs[idx].data, proof) },
		"negative index":    func() error { return translog.VerifyInclusion(cp, -1, recs[idx].kind, recs[idx].data, proof) },
		"huge proof": func() error {
			return translog.VerifyInclusion(cp, idx, recs[idx].kind, recs[idx].data, make(tlog.RecordProof, translog.MaxProofHashes+1))
		},
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, translog.ErrBadProof) {
			t.Errorf("%s: %v, want ErrBadProof", name, err)
		}
	}

	// The signed checkpoint itself.
	tampered := bytes.Replace(signed, []byte("\n7\n"), []byte("\n8\n"), 1)
	if bytes.Equal(tampered, signed) {
		t.Fatal("test did not change the checkpoint")
	}
	if _, err := translog.VerifyCheckpoint(tampered, k.verifier); !errors.Is(err, translog.ErrBadCheckpoint) || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("tampered size: %v", err)
	}
	other := newKey(t, testOrigin) // same name, other key
	if _, err := translog.VerifyCheckpoint(signed, other.verifier); !errors.Is(err, translog.ErrBadCheckpoint) || !strings.Contains(err.Error(), "not signed by the log key") {
		t.Errorf("other key: %v", err)
	}
	// A log signed by another key of the same name is not trusted either.
	otherLog := newLog(t, openDB(t, ""), other)
	otherSigned, err := otherLog.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := translog.VerifyCheckpoint(otherSigned, k.verifier); !errors.Is(err, translog.ErrBadCheckpoint) {
		t.Errorf("checkpoint of another key: %v", err)
	}
	if _, err := translog.VerifyCheckpoint(signed, nil); !errors.Is(err, translog.ErrBadCheckpoint) {
		t.Errorf("nil verifier: %v", err)
	}
}

func TestCheckpointFormat(t *testing.T) {
	k := newKey(t, testOrigin)
	witness := newKey(t, "witness.example")
	empty := translog.Checkpoint{Origin: testOrigin}
	emptyHash := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	sign := func(body string, signers ...testKey) []byte {
		var ss []note.Signer
		for _, s := range signers {
			ss = append(ss, s.signer)
		}
		b, err := note.Sign(&note.Note{Text: body}, ss...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := fmt.Sprintf("%s\n5\n%s\n", testOrigin, emptyHash)
	cp, err := translog.VerifyCheckpoint(sign(good, k, witness), k.verifier)
	if err != nil || cp.Size != 5 || cp.Origin != testOrigin {
		t.Fatalf("cosigned checkpoint: %+v %v", cp, err)
	}
	if string(empty.Text()) != testOrigin+"\n0\n"+(tlog.Hash{}).String()+"\n" {
		t.Fatalf("Text: %q", empty.Text())
	}
	bad := map[string]string{
		"extension line":       good + "extra\n",
		"leading zero":         fmt.Sprintf("%s\n05\n%s\n", testOrigin, emptyHash),
		"signed size":          fmt.Sprintf("%s\n+5\n%s\n", testOrigin, emptyHash),
		"negative size":        fmt.Sprintf("%s\n-5\n%s\n", testOrigin, emptyHash),
		"size overflow":        fmt.Sprintf("%s\n9223372036854775808\n%s\n", testOrigin, emptyHash),
		"short hash":           fmt.Sprintf("%s\n5\nAAAA\n", testOrigin),
		"non-canonical base64": fmt.Sprintf("%s\n5\n%s\n", testOrigin, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV="),
		"raw base64":           fmt.Sprintf("%s\n5\n%s\n", testOrigin, strings.TrimSuffix(emptyHash, "=")),
		"other origin":         fmt.Sprintf("%s\n5\n%s\n", "ztota-certd.example/other", emptyHash),
		"empty size 0 hash":    fmt.Sprintf("%s\n0\n%s\n", testOrigin, tlog.Hash{}.String()),
		"two lines":            fmt.Sprintf("%s\n5\n", testOrigin),
	}
	for name, body := range bad {
		if _, err := translog.VerifyCheckpoint(sign(body, k), k.verifier); !errors.Is(err, translog.ErrBadCheckpoint) {
			t.Errorf("%s: %v, want ErrBadCheckpoint", name, err)
		}
	}
	huge := sign(good, k)
	huge = append(bytes.Repeat([]byte("x"), translog.MaxCheckpointSize), huge...)
	if _, err := translog.VerifyCheckpoint(huge, k.verifier); !errors.Is(err, translog.ErrBadCheckpoint) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge checkpoint: %v", err)
	}
	for name, junk := range map[string][]byte{"empty": nil, "no signature": []byte(good), "binary": {0, 1, 2, '\n', '\n'}} {
		if _, err := translog.VerifyCheckpoint(junk, k.verifier); !errors.Is(err, translog.ErrBadCheckpoint) {
			t.Errorf("%s: %v, want ErrBadCheckpoint", name, err)
		}
	}
}

func TestConsistencyBetweenAllSizes(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	const n = 13
	cps := []translog.Checkpoint{}
	cp0, _ := signedAt(t, ctx, l, k)
	cps = append(cps, cp0)
	for i := 0; i < n; i++ {
		appendAll(t, ctx, l, db, []rec{mkRec("c", i)}, 1)
		cp, _ := signedAt(t, ctx, l, k)
		cps = append(cps, cp)
	}
	for m := 0; m <= n; m++ {
		for nn := m; nn <= n; nn++ {
			p, err := l.ConsistencyProof(ctx, int64(m), int64(nn))
			if err != nil {
				t.Fatal(err)
			}
			if err := translog.VerifyConsistency(cps[m], cps[nn], p); err != nil {
				t.Fatalf("%d→%d: %v", m, nn, err)
			}
			if m >= 1 && m < nn {
				// The same proof must not vouch for another old tree.
				wrong := cps[m]
				wrong.Hash = cps[m-1].Hash
				if err := translog.VerifyConsistency(wrong, cps[nn], p); !errors.Is(err, translog.ErrBadProof) {
					t.Fatalf("%d→%d with a wrong old root: %v", m, nn, err)
				}
				if len(p) > 0 {
					bad := slices.Clone(p)
					bad[0][0] ^= 1
					if err := translog.VerifyConsistency(cps[m], cps[nn], bad); !errors.Is(err, translog.ErrBadProof) {
						t.Fatalf("%d→%d with a flipped proof: %v", m, nn, err)
					}
				}
			}
		}
	}
	if err := translog.VerifyConsistency(cps[5], cps[4], nil); !errors.Is(err, translog.ErrBadProof) {
		t.Errorf("newer smaller than older: %v", err)
	}
	other := cps[5]
	other.Origin = "elsewhere"
	if err := translog.VerifyConsistency(other, cps[6], nil); !errors.Is(err, translog.ErrBadProof) {
		t.Errorf("different origins: %v", err)
	}
	if _, err := l.ConsistencyProof(ctx, 5, 4); !errors.Is(err, translog.ErrInvalid) {
		t.Errorf("old > new: %v", err)
	}
	if _, err := l.ConsistencyProof(ctx, 1, n+1); !errors.Is(err, translog.ErrNotFound) {
		t.Errorf("new beyond log: %v", err)
	}
}

// forkedLogs builds two logs with the same key and a common prefix of
// common entries, then a entries on the first and b on the second.
func forkedLogs(t *testing.T, k testKey, common, a, b int) (*translog.Log, *translog.Log) {
	ctx := testCtx(t)
	dbA, dbB := openDB(t, ""), openDB(t, "")
	la, lb := newLog(t, dbA, k), newLog(t, dbB, k)
	var pre, ra, rb []rec
	for i := 0; i < common; i++ {
		pre = append(pre, mkRec("common", i))
	}
	for i := 0; i < a; i++ {
		ra = append(ra, mkRec("a", i))
	}
	for i := 0; i < b; i++ {
		rb = append(rb, mkRec("b", i))
	}
	appendAll(t, ctx, la, dbA, append(slices.Clone(pre), ra...), 1)
	appendAll(t, ctx, lb, dbB, append(slices.Clone(pre), rb...), 1)
	return la, lb
}

func TestForkIsDetectedByVerifyConsistency(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	la, lb := forkedLogs(t, k, 4, 3, 4)
	cpA, _ := signedAt(t, ctx, la, k)
	cpB, _ := signedAt(t, ctx, lb, k)
	p, err := lb.ConsistencyProof(ctx, cpA.Size, cpB.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := translog.VerifyConsistency(cpA, cpB, p); !errors.Is(err, translog.ErrBadProof) {
		t.Fatalf("fork passed consistency: %v", err)
	}
	// Both agree on the common prefix.
	ha, _ := la.TreeHash(ctx, 4)
	hb, _ := lb.TreeHash(ctx, 4)
	if ha != hb {
		t.Fatal("common prefix hashes differ")
	}
	p, err = lb.ConsistencyProof(ctx, 4, cpB.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := translog.VerifyConsistency(translog.Checkpoint{Origin: testOrigin, Size: 4, Hash: ha}, cpB, p); err != nil {
		t.Fatalf("common prefix: %v", err)
	}
}

func TestRollbackLeavesTheLogUnchanged(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	if _, err := db.Exec(`CREATE TABLE certs (id INTEGER PRIMARY KEY, body BLOB NOT NULL, log_index INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	l := newLog(t, db, k)
	var recs []rec
	for i := 0; i < 5; i++ {
		recs = append(recs, mkRec("r", i))
	}
	appendAll(t, ctx, l, db, recs, 2)
	before, beforeSigned := signedAt(t, ctx, l, k)

	// An append whose transaction rolls back.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if idx, err := l.Append(ctx, tx, translog.KindCertificate, []byte("rolled back")); err != nil || idx != int64(5+i) {
			t.Fatalf("append in tx: %d %v", idx, err)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	after, afterSigned := signedAt(t, ctx, l, k)
	if after != before || !bytes.Equal(afterSigned, beforeSigned) {
		t.Fatalf("rollback changed the log: %+v → %+v", before, after)
	}
	if _, err := l.Entry(ctx, 5); !errors.Is(err, translog.ErrNotFound) {
		t.Fatalf("rolled-back entry is visible: %v", err)
	}

	// A certificate and its entry commit together: when the certificate
	// insert fails, the entry goes too.
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := l.Append(ctx, tx, translog.KindCertificate, []byte("cert-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO certs (id, body, log_index) VALUES (1, NULL, ?)`, idx); err == nil {
		t.Fatal("NULL body accepted")
	}
	tx.Rollback()
	if n, _ := l.Size(ctx); n != 5 {
		t.Fatalf("size %d after failed certificate, want 5", n)
	}

	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err = l.Append(ctx, tx, translog.KindCertificate, []byte("cert-1"))
	if err != nil || idx != 5 {
		t.Fatalf("append after rollback: %d %v", idx, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO certs (id, body, log_index) VALUES (1, ?, ?)`, []byte("cert-1"), idx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, rec{translog.KindCertificate, []byte("cert-1")})
	cp, _ := signedAt(t, ctx, l, k)
	if cp.Size != 6 || cp.Hash != refRoot(refLeaves(recs)) {
		t.Fatalf("after commit: %+v", cp)
	}
	p, err := l.ConsistencyProof(ctx, before.Size, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := translog.VerifyConsistency(before, cp, p); err != nil {
		t.Fatal(err)
	}
}

func TestReopenGivesTheSameTree(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	path := t.TempDir() + "/log.db"
	db := openDB(t, path)
	l := newLog(t, db, k)
	var recs []rec
	for i := 0; i < 50; i++ {
		recs = append(recs, mkRec("o", i))
	}
	appendAll(t, ctx, l, db, recs, 10)
	cp1, signed1 := signedAt(t, ctx, l, k)
	db.Close()

	db2 := openDB(t, path)
	l2 := newLog(t, db2, k)
	cp2, signed2 := signedAt(t, ctx, l2, k)
	if cp1 != cp2 || !bytes.Equal(signed1, signed2) {
		t.Fatalf("reopened log differs: %+v vs %+v", cp1, cp2)
	}
	appendAll(t, ctx, l2, db2, []rec{mkRec("o", 50)}, 1)
	cp3, _ := signedAt(t, ctx, l2, k)
	p, err := l2.ConsistencyProof(ctx, cp1.Size, cp3.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := translog.VerifyConsistency(cp1, cp3, p); err != nil {
		t.Fatal(err)
	}
}

func TestStoredLogIsAppendOnlyAndCorruptionIsReported(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	path := t.TempDir() + "/log.db"
	db := openDB(t, path)
	l := newLog(t, db, k)
	var recs []rec
	for i := 0; i < 4; i++ {
		recs = append(recs, mkRec("x", i))
	}
	appendAll(t, ctx, l, db, recs, 4)
	for _, q := range []string{
		`UPDATE translog_entries SET data = x'00' WHERE idx = 1`,
		`DELETE FROM translog_entries WHERE idx = 3`,
		`UPDATE translog_hashes SET hash = zeroblob(32) WHERE id = 0`,
		`DELETE FROM translog_hashes WHERE id = 0`,
	} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want an append-only refusal", q, err)
		}
	}
	// Someone with raw access removes the guards and rewrites an entry.
	if _, err := db.Exec(`DROP TRIGGER translog_entries_no_update; UPDATE translog_entries SET data = x'00' WHERE idx = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Entry(ctx, 1); !errors.Is(err, translog.ErrCorrupt) {
		t.Errorf("rewritten entry: %v, want ErrCorrupt", err)
	}
	if _, err := db.Exec(`DROP TRIGGER translog_hashes_no_delete; DELETE FROM translog_hashes WHERE id = (SELECT MAX(id) FROM translog_hashes)`); err != nil {
		t.Fatal(err)
	}
	if _, err := translog.Open(db, testOrigin, k.signer); !errors.Is(err, translog.ErrCorrupt) {
		t.Errorf("open with a missing hash: %v, want ErrCorrupt", err)
	}
	if _, err := l.Checkpoint(ctx); err == nil {
		t.Error("checkpoint over a missing hash succeeded")
	}
}

func TestAppendRefusesBadInput(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for name, kind := range map[string]string{
		"empty": "", "upper": "Certificate", "newline": "cert\nx", "space": "cert x",
		"too long": strings.Repeat("a", translog.MaxKindLength+1), "leading dash": "-cert", "utf8": "zertifikät",
	} {
		if _, err := l.Append(ctx, tx, kind, []byte("x")); !errors.Is(err, translog.ErrInvalid) {
			t.Errorf("kind %s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := l.Append(ctx, tx, translog.KindCertificate, make([]byte, translog.MaxEntrySize+1)); !errors.Is(err, translog.ErrInvalid) {
		t.Errorf("oversize data: %v", err)
	}
	if _, err := l.Append(ctx, nil, translog.KindCertificate, nil); err == nil {
		t.Error("nil tx accepted")
	}
	idx, err := l.Append(ctx, tx, strings.Repeat("a", translog.MaxKindLength), nil)
	if err != nil || idx != 0 {
		t.Fatalf("longest kind, nil data: %d %v", idx, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e, err := l.Entry(ctx, 0)
	if err != nil || len(e.Data) != 0 {
		t.Fatalf("empty entry: %+v %v", e, err)
	}
	if _, err := l.Entry(ctx, -1); !errors.Is(err, translog.ErrInvalid) {
		t.Errorf("negative entry: %v", err)
	}
	if _, err := l.InclusionProof(ctx, 0, 0); !errors.Is(err, translog.ErrInvalid) {
		t.Errorf("proof in empty tree: %v", err)
	}
	if _, err := l.TreeHash(ctx, -1); !errors.Is(err, translog.ErrInvalid) {
		t.Errorf("negative tree size: %v", err)
	}
}

func TestOpenAndKeysRefuseBadInput(t *testing.T) {
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	if _, err := translog.Open(nil, testOrigin, k.signer); err == nil {
		t.Error("nil db accepted")
	}
	if _, err := translog.Open(db, testOrigin, nil); err == nil {
		t.Error("nil signer accepted")
	}
	if _, err := translog.Open(db, "other.example/log", k.signer); err == nil || !strings.Contains(err.Error(), "differs from the signer's name") {
		t.Errorf("origin other than the key name: %v", err)
	}
	if _, err := translog.Open(db, "", k.signer); err == nil {
		t.Error("empty origin accepted")
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for name, f := range map[string]func() error{
		"short key":     func() error { _, _, _, err := translog.SignerFromKey(priv[:10], testOrigin); return err },
		"name w/ space": func() error { _, _, _, err := translog.SignerFromKey(priv, "a log"); return err },
		"name w/ plus":  func() error { _, _, _, err := translog.SignerFromKey(priv, "a+log"); return err },
		"empty name":    func() error { _, _, _, err := translog.SignerFromKey(priv, ""); return err },
		"nil keys.Key":  func() error { _, _, _, err := translog.SignerFromKeysKey(nil, testOrigin); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, _, _, err := translog.SignerFromKeysKey(&keys.Key{Alg: keys.ECDSAP256, Private: ec}, testOrigin); err == nil || !strings.Contains(err.Error(), "ed25519") {
		t.Errorf("ecdsa key: %v", err)
	}
	kk, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	s, v, vkey, err := translog.SignerFromKeysKey(kk, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	// The verifier key text round-trips through note.NewVerifier and
	// verifies what the signer signs.
	v2, err := note.NewVerifier(vkey)
	if err != nil || v2.KeyHash() != v.KeyHash() || v2.Name() != testOrigin || s.KeyHash() != v.KeyHash() {
		t.Fatalf("verifier key %q: %v", vkey, err)
	}
	l := newLog(t, db, testKey{signer: s, verifier: v})
	signed, err := l.Checkpoint(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := translog.VerifyCheckpoint(signed, v2); err != nil {
		t.Fatal(err)
	}
}

func TestReceiptProvesPresenceOffline(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	var recs []rec
	for i := 0; i < 11; i++ {
		recs = append(recs, mkRec("rc", i))
	}
	appendAll(t, ctx, l, db, recs, 3)
	r, err := l.Receipt(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back translog.Receipt
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	cp, err := translog.VerifyReceipt(back, k.verifier, recs[6].kind, recs[6].data)
	if err != nil || cp.Size != 11 {
		t.Fatalf("receipt: %+v %v", cp, err)
	}
	if _, err := translog.VerifyReceipt(back, k.verifier, recs[5].kind, recs[5].data); !errors.Is(err, translog.ErrBadProof) {
		t.Errorf("receipt for another entry: %v", err)
	}
	if _, err := translog.VerifyReceipt(back, newKey(t, testOrigin).verifier, recs[6].kind, recs[6].data); !errors.Is(err, translog.ErrBadCheckpoint) {
		t.Errorf("receipt under another key: %v", err)
	}
	if _, err := l.Receipt(ctx, 11); !errors.Is(err, translog.ErrNotFound) {
		t.Errorf("receipt beyond the log: %v", err)
	}
}

func TestConcurrentAppendsMakeOneConsistentLog(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	const workers, each = 8, 20
	var mu sync.Mutex
	committed := map[int64]rec{}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := mkRec(fmt.Sprintf("w%d", w), i)
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				idx, err := l.Append(ctx, tx, r.kind, r.data)
				if err != nil {
					tx.Rollback()
					errs <- err
					return
				}
				if i%5 == 4 { // every fifth transaction gives up
					if err := tx.Rollback(); err != nil {
						errs <- err
						return
					}
					continue
				}
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if _, dup := committed[idx]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("index %d committed twice", idx)
					return
				}
				committed[idx] = r
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := workers * each * 4 / 5
	if len(committed) != want {
		t.Fatalf("%d committed, want %d", len(committed), want)
	}
	recs := make([]rec, want)
	for i := range recs {
		r, ok := committed[int64(i)]
		if !ok {
			t.Fatalf("index %d missing: indexes are not contiguous", i)
		}
		recs[i] = r
	}
	cp, _ := signedAt(t, ctx, l, k)
	if cp.Size != int64(want) || cp.Hash != refRoot(refLeaves(recs)) {
		t.Fatalf("checkpoint %+v does not match the committed entries", cp)
	}
	for i, r := range recs {
		p, err := l.InclusionProof(ctx, int64(i), cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := translog.VerifyInclusion(cp, int64(i), r.kind, r.data, p); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
}

// countingSigner counts signatures.
type countingSigner struct {
	note.Signer
	mu sync.Mutex
	n  int
}

func (s *countingSigner) Sign(msg []byte) ([]byte, error) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return s.Signer.Sign(msg)
}

func (s *countingSigner) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestCheckpointIsSignedOncePerSize(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	cs := &countingSigner{Signer: k.signer}
	db := openDB(t, "")
	l, err := translog.Open(db, testOrigin, cs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if cs.count() != 1 {
		t.Fatalf("%d signatures for one size, want 1", cs.count())
	}
	appendAll(t, ctx, l, db, []rec{mkRec("s", 0)}, 1)
	a, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs.count() != 2 || !bytes.Equal(a, b) {
		t.Fatalf("%d signatures after one append, want 2", cs.count())
	}
	if cp, err := translog.VerifyCheckpoint(a, k.verifier); err != nil || cp.Size != 1 {
		t.Fatalf("checkpoint after append: %+v %v", cp, err)
	}
}
