package fetch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestEndlessDataIsCutAtDeclaredLength(t *testing.T) {
	data, want := artifact(64 << 10)
	endless := func(declare string, head []byte) func(*mirror, http.ResponseWriter, *http.Request) {
		return func(m *mirror, w http.ResponseWriter, r *http.Request) {
			if declare != "" {
				w.Header().Set("Content-Length", declare)
			}
			if len(head) > 0 && m.write(w, head) != nil {
				return
			}
			junk := bytes.Repeat([]byte{0xAA}, 32<<10)
			for r.Context().Err() == nil {
				if m.write(w, junk) != nil {
					return
				}
			}
		}
	}
	cases := []struct {
		name      string
		h         func(*mirror, http.ResponseWriter, *http.Request)
		readsNone bool // refused on the declared length, before any body byte
	}{
		{"no Content-Length, junk", endless("", nil), false},
		{"no Content-Length, correct bytes then more", endless("", data), false},
		{"huge Content-Length", endless(strconv.FormatInt(1<<40, 10), nil), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirror(t, tc.h)
			dst := tempDst(t, nil)
			var wrote int64
			opts := fast(newClient(t), m.URL)
			opts.Progress = func(done, _ int64) { wrote = max(wrote, done) }
			start := time.Now()
			_, err := Download(t.Context(), dst, want, opts)
			if wrote > want.Length || (tc.readsNone && wrote > 0) {
				t.Errorf("wrote %d bytes (signed length %d, refuse before reading: %v)", wrote, want.Length, tc.readsNone)
			}
			if !errors.Is(err, ErrTooLong) || !errors.Is(err, ErrAllMirrorsFailed) {
				t.Fatalf("err = %v, want ErrTooLong and ErrAllMirrorsFailed", err)
			}
			if IsTransient(err) {
				t.Errorf("endless data from the only mirror reported as transient")
			}
			if got := m.requests.Load(); got != 1 {
				t.Errorf("mirror asked %d times, want 1 (a mirror sending endless data is dropped)", got)
			}
			if n := len(contents(t, dst)); n != 0 {
				t.Errorf("dst holds %d bytes of a refused download, want 0", n)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %s to refuse endless data", el)
			}
		})
	}
}

func TestLyingContentRangeIsRefused(t *testing.T) {
	data, want := artifact(8 << 10)
	half := len(data) / 2
	cases := []struct {
		name      string
		cr        string
		wantErr   error
		transient bool
	}{
		{"larger total", "bytes " + strconv.Itoa(half) + "-" + strconv.Itoa(2*len(data)-1) + "/" + strconv.Itoa(2*len(data)), ErrTooLong, false},
		{"other start", "bytes 0-" + strconv.Itoa(len(data)-1) + "/" + strconv.Itoa(len(data)), ErrBadResponse, true},
		{"garbage", "bytes x-y/z", ErrBadResponse, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirror(t, func(m *mirror, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", tc.cr)
				w.WriteHeader(http.StatusPartialContent)
				m.write(w, data)
			})
			dst := tempDst(t, data[:half])
			opts := fast(newClient(t), m.URL)
			opts.MaxAttempts = 2
			_, err := Download(t.Context(), dst, want, opts)
			if !errors.Is(err, tc.wantErr) || IsTransient(err) != tc.transient {
				t.Fatalf("err = %v (transient %v), want %v (transient %v)", err, IsTransient(err), tc.wantErr, tc.transient)
			}
			if got := contents(t, dst); len(got) > half {
				t.Errorf("dst grew to %d bytes from a response that did not fit the request", len(got))
			}
		})
	}
}

func TestSlowRetrievalIsAbortedAndNextMirrorUsed(t *testing.T) {
	data, want := artifact(32 << 10)
	slow := newMirror(t, trickle(data[:100], data[100:], 20*time.Millisecond))
	good := newMirror(t, honest(data))
	dst := tempDst(t, nil)
	opts := fast(newClient(t), slow.URL, good.URL)
	opts.MinRate, opts.RateWindow = 10_000, 200*time.Millisecond // 2000 bytes per window; the trickle gives ~10

	start := time.Now()
	res, err := Download(t.Context(), dst, want, opts)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("slow mirror held the download for %s", el)
	}
	// Attempt 2 is the good mirror; on a loaded machine (the race
	// detector, other tests) its first window may itself fall below the
	// rate and the mirrors are tried again, so only the order is fixed.
	if res.Mirror != good.URL || res.Attempts < 2 || res.Attempts%2 != 0 {
		t.Errorf("result = %+v, want completed by the second mirror", res)
	}
	if !bytes.Equal(contents(t, dst), data) {
		t.Fatal("dst does not hold the artifact")
	}
	// The bytes the slow mirror did send were kept and the good one was
	// asked for the rest only.
	rs := good.rangesSeen()
	if len(rs) == 0 || rs[0] == "" || !res.Resumed {
		t.Errorf("good mirror saw Range %q, resumed=%v; want a resume from the trickled bytes", rs, res.Resumed)
	}
}

func TestSlowRetrievalFromEveryMirrorFailsWithErrSlow(t *testing.T) {
	data, want := artifact(32 << 10)
	cases := []struct {
		name string
		h    func(*mirror, http.ResponseWriter, *http.Request)
	}{
		{"trickles bytes", trickle(data[:10], data[10:], 30*time.Millisecond)},
		{"withholds headers", stall},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirror(t, tc.h)
			opts := fast(newClient(t), m.URL)
			opts.MinRate, opts.RateWindow, opts.MaxAttempts = 10_000, 200*time.Millisecond, 2
			start := time.Now()
			_, err := Download(t.Context(), tempDst(t, nil), want, opts)
			if !errors.Is(err, ErrSlow) || !errors.Is(err, ErrAllMirrorsFailed) || !IsTransient(err) {
				t.Fatalf("err = %v, want transient ErrSlow and ErrAllMirrorsFailed", err)
			}
			var me *MirrorErrors
			if !errors.As(err, &me) || len(me.Causes) != 2 {
				t.Fatalf("want 2 per-attempt causes, got %v", err)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("two slow attempts took %s, want about 2×200ms", el)
			}
		})
	}
}

func TestDeadlineBoundsADownloadThatIsSlowButAboveMinRate(t *testing.T) {
	data, want := artifact(4 << 10)
	m := newMirror(t, trickle(nil, data, 10*time.Millisecond))
	opts := fast(newClient(t), m.URL)
	opts.Deadline = 300 * time.Millisecond
	start := time.Now()
	_, err := Download(t.Context(), tempDst(t, nil), want, opts)
	if !errors.Is(err, ErrSlow) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrSlow from the deadline", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a 300ms deadline took %s", el)
	}
}

func TestResumeAfterConnectionDroppedMidBody(t *testing.T) {
	data, want := artifact(256 << 10)
	half := 100 << 10
	m := newMirror(t, func(m *mirror, w http.ResponseWriter, r *http.Request) {
		if m.requests.Load() == 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			m.write(w, data[:half])
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-body
		}
		honest(data)(m, w, r)
	})
	dst := tempDst(t, nil)
	res, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	rs := m.rangesSeen()
	if len(rs) != 2 || rs[0] != "" || rs[1] != "bytes="+strconv.Itoa(half)+"-" {
		t.Fatalf("Range headers = %q, want none then bytes=%d-", rs, half)
	}
	if got := m.served.Load(); got != int64(len(data)) {
		t.Errorf("mirror served %d body bytes in all, want %d (nothing sent twice)", got, len(data))
	}
	if !res.Resumed || res.Attempts != 2 || res.Bytes != want.Length || res.Transferred != want.Length {
		t.Errorf("result = %+v", res)
	}
	if !bytes.Equal(contents(t, dst), data) {
		t.Fatal("dst does not hold the artifact")
	}
}

func TestResumeFromEarlierInterruptedDownload(t *testing.T) {
	data, want := artifact(64 << 10)
	held := 40_000
	m := newMirror(t, honest(data))
	dst := tempDst(t, data[:held])
	res, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	if rs := m.rangesSeen(); len(rs) != 1 || rs[0] != "bytes=40000-" {
		t.Errorf("Range headers = %q, want [bytes=40000-]", rs)
	}
	if got := m.served.Load(); got != int64(len(data)-held) {
		t.Errorf("served %d bytes, want only the missing %d", got, len(data)-held)
	}
	if !res.Resumed || res.Transferred != int64(len(data)-held) {
		t.Errorf("result = %+v", res)
	}
	if !bytes.Equal(contents(t, dst), data) {
		t.Fatal("dst does not hold the artifact")
	}
}

func TestServerIgnoringRangeRestartsFromZero(t *testing.T) {
	data, want := artifact(64 << 10)
	m := newMirror(t, func(m *mirror, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		m.write(w, data) // 200 with the whole file, whatever the Range
	})
	// The held prefix is wrong: keeping any of it would break the digest.
	dst := tempDst(t, bytes.Repeat([]byte{0x55}, 1000))
	res, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	if rs := m.rangesSeen(); len(rs) != 1 || rs[0] != "bytes=1000-" {
		t.Errorf("Range headers = %q", rs)
	}
	if res.Resumed || res.Attempts != 1 {
		t.Errorf("result = %+v, want a fresh download in one attempt", res)
	}
	if !bytes.Equal(contents(t, dst), data) {
		t.Fatal("dst does not hold the artifact")
	}
}

func TestRangeNotSatisfiableRestartsFromZero(t *testing.T) {
	data, want := artifact(16 << 10)
	m := newMirror(t, func(m *mirror, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		honest(data)(m, w, r)
	})
	dst := tempDst(t, data[:5000])
	res, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	if rs := m.rangesSeen(); len(rs) != 2 || rs[0] != "bytes=5000-" || rs[1] != "" {
		t.Errorf("Range headers = %q, want bytes=5000- then none", rs)
	}
	if res.Resumed || res.Attempts != 1 || !bytes.Equal(contents(t, dst), data) {
		t.Errorf("result = %+v", res)
	}
}

func TestWrongBytesAreRefusedAndDstEmptied(t *testing.T) {
	data, want := artifact(32 << 10)
	evil := bytes.Clone(data)
	evil[len(evil)/2] ^= 1
	a, b := newMirror(t, honest(evil)), newMirror(t, honest(evil))
	dst := tempDst(t, nil)
	opts := fast(newClient(t), a.URL, b.URL)
	opts.MaxAttempts = 6
	_, err := Download(t.Context(), dst, want, opts)
	if !errors.Is(err, ErrHashMismatch) || !errors.Is(err, ErrAllMirrorsFailed) || IsTransient(err) {
		t.Fatalf("err = %v, want fatal ErrHashMismatch", err)
	}
	if n := len(contents(t, dst)); n != 0 {
		t.Errorf("dst keeps %d unverified bytes", n)
	}
	if a.requests.Load() != 1 || b.requests.Load() != 1 {
		t.Errorf("requests %d, %d: a mirror that served wrong bytes from 0 must not be asked again", a.requests.Load(), b.requests.Load())
	}
}

func TestCorruptHeldPrefixIsDiscardedAndRefetched(t *testing.T) {
	data, want := artifact(32 << 10)
	m := newMirror(t, honest(data))
	bad := bytes.Clone(data[:10_000])
	bad[3] ^= 0xFF
	dst := tempDst(t, bad)
	res, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	// The resumed digest fails without blaming the honest mirror, which is
	// then asked for the whole artifact.
	if rs := m.rangesSeen(); len(rs) != 2 || rs[0] != "bytes=10000-" || rs[1] != "" {
		t.Errorf("Range headers = %q", rs)
	}
	if res.Resumed || res.Attempts != 2 || !bytes.Equal(contents(t, dst), data) {
		t.Errorf("result = %+v", res)
	}
}

func TestWithholdingMirrorIsSkipped(t *testing.T) {
	data, want := artifact(16 << 10)
	closed := newMirror(t, stall)
	closedURL := closed.URL
	closed.Close() // connection refused
	cases := []struct {
		name string
		h    func(*mirror, http.ResponseWriter, *http.Request)
		url  string
	}{
		{"404", status(http.StatusNotFound), ""},
		{"503", status(http.StatusServiceUnavailable), ""},
		{"empty 200", func(m *mirror, w http.ResponseWriter, r *http.Request) { w.Header().Set("Content-Length", "0") }, ""},
		{"connection refused", nil, closedURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if tc.h != nil {
				u = newMirror(t, tc.h).URL
			}
			good := newMirror(t, honest(data))
			dst := tempDst(t, nil)
			res, err := Download(t.Context(), dst, want, fast(newClient(t), u, good.URL))
			if err != nil {
				t.Fatal(err)
			}
			if res.Mirror != good.URL || res.Attempts != 2 || !bytes.Equal(contents(t, dst), data) {
				t.Errorf("result = %+v", res)
			}
		})
	}
}

func TestAllMirrorsFailingIsBoundedAndReported(t *testing.T) {
	_, want := artifact(1024)
	t.Run("transient", func(t *testing.T) {
		a, b := newMirror(t, status(http.StatusServiceUnavailable)), newMirror(t, status(http.StatusTooManyRequests))
		opts := fast(newClient(t), a.URL, b.URL)
		opts.MaxAttempts = 5
		_, err := Download(t.Context(), tempDst(t, nil), want, opts)
		var me *MirrorErrors
		if !errors.Is(err, ErrAllMirrorsFailed) || !errors.As(err, &me) || !IsTransient(err) {
			t.Fatalf("err = %v, want transient *MirrorErrors", err)
		}
		if n := a.requests.Load() + b.requests.Load(); n != 5 || len(me.Causes) != 5 {
			t.Errorf("%d requests, %d causes; want exactly MaxAttempts=5", n, len(me.Causes))
		}
		if me.Causes[0].Mirror != a.URL || me.Causes[1].Mirror != b.URL || me.Causes[2].Mirror != a.URL {
			t.Errorf("mirrors not tried in turn: %+v", me.Causes)
		}
		var se *HTTPStatusError
		if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			t.Errorf("last cause %v, want 503 from the fifth attempt", err)
		}
	})
	t.Run("fatal 4xx stops early", func(t *testing.T) {
		a, b := newMirror(t, status(http.StatusForbidden)), newMirror(t, status(http.StatusGone))
		opts := fast(newClient(t), a.URL, b.URL)
		opts.MaxAttempts = 10
		_, err := Download(t.Context(), tempDst(t, nil), want, opts)
		var me *MirrorErrors
		if !errors.As(err, &me) || !me.Dropped || IsTransient(err) {
			t.Fatalf("err = %v, want every mirror dropped", err)
		}
		if n := a.requests.Load() + b.requests.Load(); n != 2 {
			t.Errorf("%d requests, want 2 (4xx mirrors are not asked again)", n)
		}
	})
}

func TestCancelStopsQuickly(t *testing.T) {
	_, want := artifact(1 << 20)
	t.Run("during transfer", func(t *testing.T) {
		m := newMirror(t, stall)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := Download(ctx, tempDst(t, nil), want, fast(newClient(t), m.URL))
		if !errors.Is(err, context.Canceled) || IsTransient(err) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("cancel took %s to stop the download", el)
		}
	})
	t.Run("during backoff", func(t *testing.T) {
		m := newMirror(t, status(http.StatusBadGateway))
		opts := fast(newClient(t), m.URL)
		opts.Backoff = time.Minute
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := Download(ctx, tempDst(t, nil), want, opts)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("cancel took %s to end the backoff", el)
		}
	})
}
