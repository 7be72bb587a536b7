package fetch

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDownloadFreshArtifact(t *testing.T) {
	data, want := artifact(300 << 10)
	m := newMirror(t, honest(data))
	dst := tempDst(t, nil)
	res, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	want2 := Result{Bytes: want.Length, Transferred: want.Length, Attempts: 1, Mirror: m.URL}
	if res != want2 {
		t.Errorf("result = %+v, want %+v", res, want2)
	}
	if !bytes.Equal(contents(t, dst), data) {
		t.Fatal("dst does not hold the artifact")
	}
}

func TestAlreadyCompleteFileNeedsNoRequest(t *testing.T) {
	data, want := artifact(20 << 10)
	m := newMirror(t, honest(data))
	res, err := Download(t.Context(), tempDst(t, data), want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	if m.requests.Load() != 0 || res.Attempts != 0 || !res.Resumed || res.Bytes != want.Length {
		t.Errorf("result = %+v after %d requests", res, m.requests.Load())
	}
}

func TestOverlongHeldFileIsDiscarded(t *testing.T) {
	data, want := artifact(20 << 10)
	m := newMirror(t, honest(data))
	dst := tempDst(t, append(bytes.Clone(data), 1, 2, 3))
	res, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL))
	if err != nil {
		t.Fatal(err)
	}
	if rs := m.rangesSeen(); len(rs) != 1 || rs[0] != "" || res.Resumed {
		t.Errorf("Range headers %q, result %+v: want a fresh download", rs, res)
	}
	if !bytes.Equal(contents(t, dst), data) {
		t.Fatal("dst does not hold the artifact")
	}
}

func TestEmptyArtifact(t *testing.T) {
	sum := sha256.Sum256(nil)
	m := newMirror(t, status(http.StatusInternalServerError))
	res, err := Download(t.Context(), tempDst(t, nil), Want{Length: 0, SHA256: sum[:]}, fast(newClient(t), m.URL))
	if err != nil || res.Attempts != 0 {
		t.Fatalf("res %+v, err %v", res, err)
	}
}

func TestHeaderHookSignsEveryRequest(t *testing.T) {
	data, want := artifact(8 << 10)
	m := newMirror(t, func(m *mirror, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ztota-Signature") != "ok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		honest(data)(m, w, r)
	})
	opts := fast(newClient(t), m.URL)
	opts.Header = func(r *http.Request) error { r.Header.Set("Ztota-Signature", "ok"); return nil }
	if _, err := Download(t.Context(), tempDst(t, nil), want, opts); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("signing key unavailable")
	opts.Header = func(*http.Request) error { return boom }
	before := m.requests.Load()
	_, err := Download(t.Context(), tempDst(t, nil), want, opts)
	if !errors.Is(err, boom) || IsTransient(err) || m.requests.Load() != before {
		t.Fatalf("err = %v after %d requests: a hook failure must stop before sending", err, m.requests.Load()-before)
	}
}

func TestProgressIsCalledAtMostEveryPercent(t *testing.T) {
	data, want := artifact(1 << 20)
	m := newMirror(t, honest(data))
	var calls [][2]int64
	opts := fast(newClient(t), m.URL)
	opts.Progress = func(done, total int64) { calls = append(calls, [2]int64{done, total}) }
	if _, err := Download(t.Context(), tempDst(t, nil), want, opts); err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || len(calls) > 102 {
		t.Fatalf("%d progress calls, want 1..102", len(calls))
	}
	for i, c := range calls {
		if c[1] != want.Length || (i > 0 && c[0] <= calls[i-1][0]) {
			t.Fatalf("call %d = %v after %v", i, c, calls[max(i-1, 0)])
		}
	}
	if last := calls[len(calls)-1]; last[0] != want.Length {
		t.Errorf("last progress %v, want the total", last)
	}
}

func TestInvalidOptionsAreRefusedWithAReason(t *testing.T) {
	_, want := artifact(10)
	c := &http.Client{}
	good := func() Options { return Options{Client: c, Mirrors: []string{"https://m.example/a"}} }
	cases := []struct {
		name string
		edit func(*Options, *Want)
		says string
	}{
		{"no client", func(o *Options, _ *Want) { o.Client = nil }, "Client"},
		{"no mirrors", func(o *Options, _ *Want) { o.Mirrors = nil }, "mirrors"},
		{"too many mirrors", func(o *Options, _ *Want) { o.Mirrors = make([]string, MaxMirrors+1) }, "mirrors"},
		{"relative mirror", func(o *Options, _ *Want) { o.Mirrors = []string{"/a"} }, "absolute"},
		{"file mirror", func(o *Options, _ *Want) { o.Mirrors = []string{"file:///etc/passwd"} }, "absolute"},
		{"long mirror", func(o *Options, _ *Want) { o.Mirrors = []string{"https://m/" + strings.Repeat("a", maxURLLen)} }, "long"},
		{"negative rate", func(o *Options, _ *Want) { o.MinRate = -1 }, "MinRate"},
		{"tiny window", func(o *Options, _ *Want) { o.RateWindow = time.Microsecond }, "RateWindow"},
		{"unbounded attempts", func(o *Options, _ *Want) { o.MaxAttempts = MaxAttemptsLimit + 1 }, "MaxAttempts"},
		{"huge backoff", func(o *Options, _ *Want) { o.Backoff = time.Hour }, "Backoff"},
		{"huge deadline", func(o *Options, _ *Want) { o.Deadline = MaxDeadline + 1 }, "Deadline"},
		{"negative length", func(_ *Options, w *Want) { w.Length = -1 }, "Length"},
		{"short digest", func(_ *Options, w *Want) { w.SHA256 = w.SHA256[:31] }, "SHA256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, w := good(), want
			tc.edit(&o, &w)
			_, err := Download(t.Context(), tempDst(t, nil), w, o)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want ErrInvalidOptions naming %q", err, tc.says)
			}
		})
	}
	if _, err := Download(t.Context(), nil, want, good()); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("nil dst: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	_, want := artifact(10)
	s, err := Options{Client: &http.Client{}, Mirrors: []string{"http://m/a"}}.settings(want)
	if err != nil {
		t.Fatal(err)
	}
	if s.minRate != DefaultMinRate || s.window != DefaultRateWindow || s.maxAttempts != DefaultMaxAttempts ||
		s.backoff != DefaultBackoff || s.deadline != deadlineSlack+time.Second {
		t.Errorf("settings = %+v", s)
	}
}

func TestDerivedDeadlineIsBounded(t *testing.T) {
	cases := []struct {
		length, rate int64
		want         time.Duration
	}{
		{0, 1024, time.Minute + time.Second},
		{10 << 20, 1 << 20, time.Minute + 21*time.Second},
		{1 << 62, 1, MaxDeadline},
		{1<<63 - 1, 1, MaxDeadline},
	}
	for _, c := range cases {
		if got := derivedDeadline(c.length, c.rate); got != c.want {
			t.Errorf("derivedDeadline(%d, %d) = %s, want %s", c.length, c.rate, got, c.want)
		}
	}
}
