package translog_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/translog"
)

// BenchmarkAppend measures Append committed in transactions of perTx
// entries, against a reference measured in the same run: a raw INSERT of
// the same kind and data into a plain table, in transactions of the same
// size on the same database. "ratio" is append time over reference time.
func BenchmarkAppend(b *testing.B) {
	for _, perTx := range []int{1, 100} {
		b.Run(fmt.Sprintf("per-tx=%d", perTx), func(b *testing.B) {
			ctx := context.Background()
			k := newKey(b, testOrigin)
			db := openDB(b, "")
			if _, err := db.Exec(`CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			l := newLog(b, db, k)
			data := make([]byte, 1024)
			rand.Read(data)

			run := func(write func(tx *sql.Tx) error) time.Duration {
				start := time.Now()
				for i := 0; i < b.N; i += perTx {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					for j := i; j < min(i+perTx, b.N); j++ {
						if err := write(tx); err != nil {
							tx.Rollback()
							b.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}

			b.ResetTimer()
			logged := run(func(tx *sql.Tx) error {
				_, err := l.Append(ctx, tx, translog.KindCertificate, data)
				return err
			})
			b.StopTimer()
			raw := run(func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO bench_raw (kind, data) VALUES (?, ?)`, translog.KindCertificate, data)
				return err
			})
			if n, err := l.Size(ctx); err != nil || n != int64(b.N) {
				b.Fatalf("log size %d, want %d: %v", n, b.N, err)
			}
			b.ReportMetric(float64(b.N)/logged.Seconds(), "entries/s")
			b.ReportMetric(float64(b.N)/raw.Seconds(), "raw-entries/s")
			b.ReportMetric(logged.Seconds()/raw.Seconds(), "ratio")
		})
	}
}

// BenchmarkProve measures serving an inclusion proof and a checkpoint on a
// log of 10000 entries, against the reference of reading the entry itself.
func BenchmarkProve(b *testing.B) {
	ctx := context.Background()
	k := newKey(b, testOrigin)
	db := openDB(b, "")
	l := newLog(b, db, k)
	const n = 10000
	recs := make([]rec, n)
	for i := range recs {
		recs[i] = mkRec("p", i)
	}
	appendAll(b, ctx, l, db, recs, 1000)
	cp, _ := signedAt(b, ctx, l, k)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		idx := int64(i % n)
		p, err := l.InclusionProof(ctx, idx, n)
		if err != nil {
			b.Fatal(err)
		}
		if i%100 == 0 {
			if err := translog.VerifyInclusion(cp, idx, recs[idx].kind, recs[idx].data, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	proved := time.Since(start)
	b.StopTimer()
	start = time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := l.Entry(ctx, int64(i%n)); err != nil {
			b.Fatal(err)
		}
	}
	read := time.Since(start)
	b.ReportMetric(float64(b.N)/proved.Seconds(), "proofs/s")
	b.ReportMetric(float64(b.N)/read.Seconds(), "entry-reads/s")
	b.ReportMetric(proved.Seconds()/read.Seconds(), "ratio")
}
