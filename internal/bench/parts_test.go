package bench_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/testbed"
)

// BenchmarkCheckinParts times the pieces of work a check-in costs beyond
// the bare handler, so that a low check-in ratio can be traced to its
// cause: the client's signature, the server's signature check, and the
// server's last-seen write to its database (alone and from 16 goroutines).
func BenchmarkCheckinParts(b *testing.B) {
	cb := newCheckinBed(b)
	ctx := testbed.Ctx(b)
	req, err := http.NewRequest(http.MethodGet, cb.realURL, nil)
	fatalIf(b, err)
	req.RequestURI = req.URL.RequestURI()
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			devauth.Sign(req, cb.deviceID, cb.key, time.Now(), nil)
		}
	})
	b.Run("verify", func(b *testing.B) {
		pub := cb.key.Public().(ed25519.PublicKey)
		lookup := func(context.Context, string) (ed25519.PublicKey, error) { return pub, nil }
		devauth.Sign(req, cb.deviceID, cb.key, time.Now(), nil)
		for b.Loop() {
			if _, _, err := devauth.Verify(ctx, req, lookup, time.Now(), 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	st := cb.bed.Server.Store()
	b.Run("touch-device", func(b *testing.B) {
		for b.Loop() {
			if err := st.TouchDevice(ctx, cb.deviceID, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("touch-device-16", func(b *testing.B) {
		b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 goroutines
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := st.TouchDevice(ctx, cb.deviceID, time.Now()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
