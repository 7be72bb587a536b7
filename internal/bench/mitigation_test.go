package bench_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/bench"
	"github.com/ztota/ztota/internal/certclient"
	"github.com/ztota/ztota/internal/certd"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Full-size settings of the mitigation figures.
const (
	figMitigationDevices = 1000
	figMitigationPoll    = 5 * time.Second
	figRounds            = 3
	mitigationJitter     = 0.2
	// The nudged devices' own slow poll: longer than a round, so only
	// nudges can bring the list.
	mitigationSlowPoll = time.Hour
)

// osvRecord writes an OSV record of a Debian package fixed in fixed.
func osvRecord(tb testing.TB, dir, id, pkg, fixed string) {
	tb.Helper()
	rec := map[string]any{
		"schema_version": "1.6.0", "id": id, "modified": time.Now().UTC().Format(time.RFC3339Nano),
		"summary": "advisory " + id,
		"affected": []any{map[string]any{
			"package": map[string]any{"ecosystem": "Debian", "name": pkg},
			"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
				map[string]any{"introduced": "0"}, map[string]any{"fixed": fixed}}}},
		}},
	}
	b, _ := json.Marshal(rec)
	p := filepath.Join(dir, id+".json")
	fatalIf(tb, os.WriteFile(p, b, 0o644))
	later := time.Now().Add(time.Second)
	os.Chtimes(p, later, later)
}

// dpkgArtifact writes a dpkg status database listing one package.
func dpkgArtifact(tb testing.TB, dir, pkg, version string) string {
	tb.Helper()
	p := filepath.Join(dir, pkg+"-"+version+".status")
	data := fmt.Sprintf("Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\nDescription: bench package\n\n", pkg, version)
	fatalIf(tb, os.WriteFile(p, []byte(data), 0o644))
	return p
}

// stamps records when something happened, once per key, while armed.
type stamps struct {
	mu    sync.Mutex
	armed bool
	at    map[string]time.Time
}

func (s *stamps) arm() {
	s.mu.Lock()
	s.armed, s.at = true, map[string]time.Time{}
	s.mu.Unlock()
}

func (s *stamps) mark(key string, t time.Time) {
	s.mu.Lock()
	if _, ok := s.at[key]; s.armed && !ok {
		s.at[key] = t
	}
	s.mu.Unlock()
}

func (s *stamps) get(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[key]
	return t, ok
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reportStamps is a front of the server that records, per device, when
// the server answered 200 to a report batch: the batch is stored then.
func reportStamps(s *stamps) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			dev, ok := strings.CutPrefix(r.URL.Path, "/v1/devices/")
			dev, isReport := strings.CutSuffix(dev, "/reports")
			if !ok || !isReport || r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			next.ServeHTTP(sw, r)
			if sw.code == http.StatusOK {
				s.mark(dev, time.Now())
			}
		})
	}
}

// serverBed is a real server over TLS on loopback with fresh keys, run
// as Serve runs it (its own re-signing interval, the feed follower), with
// a front handler that sees every request.
type serverBed struct {
	tb      testing.TB
	KeysDir string
	URL     string
	CA      string
	Server  *server.Server
	Admin   *apiclient.Client
}

func newServerBed(tb testing.TB, front func(http.Handler) http.Handler, adjust func(*server.Config)) *serverBed {
	tb.Helper()
	dir := tb.TempDir()
	b := &serverBed{tb: tb, KeysDir: filepath.Join(dir, "keys")}
	fatalIf(tb, keyset.Init(b.KeysDir, keyset.Options{}))
	online := filepath.Join(b.KeysDir, keyset.OnlineDir)
	cfg := server.Config{DataDir: filepath.Join(dir, "server"), KeysDir: online, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	adjust(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	fatalIf(tb, err)
	b.Server = srv
	var cert, key string
	b.CA, cert, key = keyset.TLSFiles(online)
	tc, err := tlsutil.ServerConfig(cert, key)
	fatalIf(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	fatalIf(tb, err)
	hs := httpbound.Server(front(srv.Handler()), cfg.Timeouts.Timeouts, tc)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); hs.ServeTLS(ln, "", "") }()
	go func() { defer wg.Done(); srv.FollowFeed(ctx) }()
	go func() {
		// The server's own re-signing loop (Serve's), at its interval.
		defer wg.Done()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				srv.ResignExpiring(ctx)
			}
		}
	}()
	tb.Cleanup(func() {
		cancel()
		hs.Close()
		wg.Wait()
		srv.Close()
	})
	b.URL = "https://" + ln.Addr().String()
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminTokenFile))
	fatalIf(tb, err)
	b.Admin = apiclient.New(b.URL, strings.TrimSpace(string(tok)))
	tr, err := tlsutil.Transport(b.CA)
	fatalIf(tb, err)
	b.Admin.HTTP.Transport = tr
	return b
}

// Release signs and uploads an artifact as a release of module app.
func (b *serverBed) Release(artifact, version string, counter uint64, hw ...string) release.Result {
	b.tb.Helper()
	r, err := release.Publish(testbed.Ctx(b.tb), b.Admin, release.Options{Artifact: artifact, KeysDir: b.KeysDir,
		Meta: tufrepo.ImageMeta{Name: "app", Version: version, ReleaseCounter: counter, HardwareIDs: hw, Module: "app"}})
	fatalIf(b.tb, err)
	return r
}

// History returns a device's reports as the server stored them.
func (b *serverBed) History(device string) []store.Report {
	b.tb.Helper()
	h, err := b.Server.Store().History(testbed.Ctx(b.tb), device, 0)
	fatalIf(b.tb, err)
	return h
}

// mitigationBed is a real certification service and a real server
// following its feed and mirroring its signed revocation list (both over
// TLS on loopback), and n simulated devices enrolled through the API that
// run a certified release.
type mitigationBed struct {
	bed     *serverBed
	cd      *certd.Service
	cc      *certclient.Client
	osv     string
	root    *certroot.Root
	fleet   *bench.Fleet
	reports stamps // device -> degraded report stored
	events  stamps // "mitigations", "list" -> when
	rels    map[string]artifactRel
}

type artifactRel struct {
	pkg, version, target, sha string
}

// newMitigationBed makes the bed with one certified release per round
// (packages pkgName(0), pkgName(1), ...).
func newMitigationBed(tb testing.TB, n, rounds int) *mitigationBed {
	tb.Helper()
	ctx := testbed.Ctx(tb)
	mb := &mitigationBed{osv: filepath.Join(tb.TempDir(), "osv"), rels: map[string]artifactRel{}}
	fatalIf(tb, os.Mkdir(mb.osv, 0o755))
	osvRecord(tb, mb.osv, "BENCH-0001", "unrelated", "1.0-1")
	cd, err := certd.Open(ctx, certd.Config{DataDir: tb.TempDir(), OSV: []string{mb.osv}})
	fatalIf(tb, err)
	tb.Cleanup(func() { cd.Close() })
	mb.cd = cd
	hs := httptest.NewTLSServer(cd.Handler())
	tb.Cleanup(hs.Close)
	ca := filepath.Join(tb.TempDir(), "certd-ca.pem")
	fatalIf(tb, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o644))
	mb.cc = certclient.New(hs.URL, cd.Token())
	mb.cc.HTTP = hs.Client()
	mb.cc.HTTP.Timeout = 2 * time.Minute
	mb.root, err = certroot.Trust(cd.Root())
	fatalIf(tb, err)

	mb.bed = newServerBed(tb, reportStamps(&mb.reports), func(c *server.Config) {
		c.CertdURL, c.CertdCAFile, c.CertifierRoot = hs.URL, ca, mb.root
		c.FeedMaxBackoff = 200 * time.Millisecond
		c.Logger = slog.New(listStamps{&mb.events})
		// Measured here: revocation to mitigation. The roll-out of the
		// fix (the next round's release has a higher counter) is off, so
		// each round deploys its own release.
		c.Repair.NoAutoFix = true
		c.OnMitigation = func(context.Context, server.MitigationOutcome) { mb.events.mark("mitigations", time.Now()) }
	})
	// Certified releases of the module: one per round.
	dir := tb.TempDir()
	for i := range rounds {
		a := struct{ pkg, version string }{pkgName(i), "1.0-1"}
		p := dpkgArtifact(tb, dir, a.pkg, a.version)
		data, err := os.ReadFile(p)
		fatalIf(tb, err)
		out, err := cd.Submit(ctx, filepath.Base(p), bytes.NewReader(data), nil)
		if err != nil || out.Result.Verdict != "pass" {
			tb.Fatalf("certifying %s: %+v %v", p, out, err)
		}
		b, err := cd.Bundle(ctx, out.Result.Digest)
		fatalIf(tb, err)
		body, _ := json.Marshal(server.CertBundle{Envelope: b.Envelope, Kind: b.Kind, Receipt: &b.Receipt})
		_, err = mb.bed.Admin.PutCertificate(ctx, out.Artifact, body)
		fatalIf(tb, err)
		rel := mb.bed.Release(p, a.version, uint64(i+1), hardwareID)
		mb.rels[a.pkg] = artifactRel{pkg: a.pkg, version: a.version, target: rel.Target, sha: out.Artifact}
	}
	list, err := mb.cc.Revocations(ctx)
	fatalIf(tb, err)
	_, err = mb.bed.Admin.PushRevocations(ctx, list)
	fatalIf(tb, err)

	// The devices, enrolled through the API (8 at a time).
	base, err := tlsutil.Transport(mb.bed.CA)
	fatalIf(tb, err)
	mb.fleet = &bench.Fleet{Base: mb.bed.URL, Root: mb.root, Devices: make([]*bench.SimDevice, n)}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("sim-%05d", i)
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			tok, err := mb.bed.Admin.EnrollToken(ctx, "bench", time.Hour)
			if err != nil {
				errs <- err
				return
			}
			body, _ := json.Marshal(enroll.NewRequest(tok, id, hardwareID, pub))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, mb.bed.URL+"/v1/enroll", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := mb.bed.Admin.HTTP.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("enrolling %s: %s", id, resp.Status)
				return
			}
			mb.fleet.Devices[i] = bench.NewSimDevice(id, priv, base)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, d := range mb.fleet.Devices {
			d.CloseIdle()
		}
	})

	return mb
}

// listStamps is the server's log handler: it stamps when the server
// stored a new revocation list (it fetches the followed certifier's list
// itself before it nudges) and drops everything else.
type listStamps struct{ s *stamps }

func (h listStamps) Enabled(context.Context, slog.Level) bool { return true }
func (h listStamps) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "revocation list stored" {
		h.s.mark("list", time.Now())
	}
	return nil
}
func (h listStamps) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h listStamps) WithGroup(string) slog.Handler      { return h }

// install deploys the package's release to every device, which reports
// it committed, and fetches the current list (its connections are warm).
func (mb *mitigationBed) install(tb testing.TB, pkg string) artifactRel {
	tb.Helper()
	ctx := testbed.Ctx(tb)
	rel := mb.rels[pkg]
	_, err := mb.bed.Admin.Deploy(ctx, server.DeployRequest{Release: rel.target, Group: "bench", FailureThreshold: 1})
	fatalIf(tb, err)
	err = mb.each(func(d *bench.SimDevice) error {
		d.Installed(rel.version, rel.sha)
		r := d.NextReport(report.StateCommitted)
		r.Target, r.Version = rel.target, rel.version
		if err := d.Post(ctx, mb.bed.URL, r); err != nil {
			return err
		}
		_, err := d.Refresh(ctx, mb.bed.URL, mb.root)
		return err
	})
	fatalIf(tb, err)
	return rel
}

// each runs fn for every device, 32 at a time.
func (mb *mitigationBed) each(fn func(*bench.SimDevice) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 32)
	for _, d := range mb.fleet.Devices {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(d); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// roundResult is one round: from the certifier's publication (t0) to
// every device's degraded report stored at the server.
type roundResult struct {
	mode, pkg   string
	lat         []time.Duration // per device, t_i - t0
	seen        []time.Duration // per device, when it found its artifact revoked in a verified list - t0
	certd       time.Duration   // the certifier's database poll, re-inspection and publication (before t0)
	mitigations time.Duration   // t0 to the server's mitigations recorded (feed followed)
	list        time.Duration   // t0 to the new list stored at the server
	fetches     int64
	lists       int64
	verify      time.Duration // mean VerifyRevocations per device
	post        time.Duration // mean degraded report POST per device
	missing     []string
}

// round installs pkg on every device, runs the fleet in mode, revokes
// the package at the certifier and waits until every device reported
// degraded (or limit passes).
func (mb *mitigationBed) round(tb testing.TB, mode string, i int, poll time.Duration, limit time.Duration) roundResult {
	tb.Helper()
	pkg, advisory := pkgName(i), fmt.Sprintf("BENCH-%04d", i+2)
	rel := mb.install(tb, pkg)
	ctx, cancel := context.WithTimeout(context.Background(), limit+2*poll+time.Minute)
	defer cancel()
	mb.reports.arm()
	mb.events.arm()
	ready := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		switch mode {
		case "poll":
			close(ready)
			ran <- mb.fleet.PollMode(ctx, poll, mitigationJitter)
		default:
			ran <- mb.fleet.NudgeMode(ctx, mitigationSlowPoll, func() { close(ready) })
		}
	}()
	<-ready
	// Steady state: every poller has passed its random phase; every
	// long poll has reached the server.
	if mode == "poll" {
		time.Sleep(poll + poll/5)
	} else {
		time.Sleep(time.Second)
	}
	osvRecord(tb, mb.osv, advisory, pkg, "99.0-1")
	start := time.Now()
	if _, err := mb.cc.PollDB(ctx); err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	deadline := t0.Add(limit)
	for time.Now().Before(deadline) {
		all := true
		for _, d := range mb.fleet.Devices {
			if !d.Degraded() {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-ran; err != nil {
		tb.Fatalf("%s round: %v", mode, err)
	}
	res := roundResult{mode: mode, pkg: pkg, certd: t0.Sub(start)}
	if t, ok := mb.events.get("mitigations"); ok {
		res.mitigations = t.Sub(t0)
	}
	if t, ok := mb.events.get("list"); ok {
		res.list = t.Sub(t0)
	}
	var verify, post time.Duration
	for _, d := range mb.fleet.Devices {
		res.fetches += d.Fetches.Load()
		res.lists += d.Lists.Load()
		verify += time.Duration(d.VerifyTime.Load())
		post += time.Duration(d.ReportTime.Load())
		t, ok := mb.reports.get(d.ID)
		if !ok || !d.Degraded() {
			res.missing = append(res.missing, d.ID)
			continue
		}
		res.lat = append(res.lat, t.Sub(t0))
		res.seen = append(res.seen, time.Unix(0, d.RevokedAt.Load()).Sub(t0))
	}
	if n := int64(len(res.lat)); n > 0 {
		res.verify, res.post = verify/time.Duration(res.lists), post/time.Duration(n)
	}
	_ = rel
	return res
}

func (r roundResult) String() string {
	last, rate := bench.Percentile(r.lat, 100), ingest(r.lat)
	return fmt.Sprintf("%s (%s): %d devices degraded; report stored p50 %s p99 %s max %s after t0; revocation seen on the device (list fetched and verified) p50 %s max %s\n"+
		"  certifier poll+publish before t0 %s; server's mitigations recorded (feed followed) +%s; new list stored at the server +%s\n"+
		"  %d list GETs, %d new lists; mean per device: VerifyRevocations %s, degraded report POST %s; reports stored %.0f/s from first to last",
		r.mode, r.pkg, len(r.lat), ms(bench.Percentile(r.lat, 50)), ms(bench.Percentile(r.lat, 99)), ms(last),
		ms(bench.Percentile(r.seen, 50)), ms(bench.Percentile(r.seen, 100)),
		ms(r.certd), ms(r.mitigations), ms(r.list), r.fetches, r.lists, r.verify.Round(time.Microsecond), r.post.Round(time.Microsecond), rate)
}

// commitRate is the reference for report ingestion: n transactions of
// one small row each, one after the other, in a database opened as the
// server opens its own (WAL, synchronous FULL) in the same file system.
func commitRate(tb testing.TB, n int) float64 {
	tb.Helper()
	ctx := testbed.Ctx(tb)
	db, err := store.OpenSQLite(ctx, filepath.Join(tb.TempDir(), "ref.db"), `CREATE TABLE IF NOT EXISTS ref (id INTEGER PRIMARY KEY, payload BLOB)`)
	fatalIf(tb, err)
	defer db.Close()
	payload := make([]byte, 600)
	start := time.Now()
	for range n {
		tx, err := db.BeginTx(ctx, nil)
		fatalIf(tb, err)
		_, err = tx.ExecContext(ctx, `INSERT INTO ref (payload) VALUES (?)`, payload)
		fatalIf(tb, err)
		fatalIf(tb, tx.Commit())
	}
	return float64(n) / time.Since(start).Seconds()
}

func pkgName(i int) string { return fmt.Sprintf("libround%02d", i) }

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// checkRound asserts that every device reported degraded and that the
// server stored it and recorded the mitigation.
func (mb *mitigationBed) checkRound(tb testing.TB, r roundResult) {
	tb.Helper()
	pkg := r.pkg
	if len(r.missing) > 0 {
		tb.Fatalf("%s round: %d devices did not report degraded: %v", r.mode, len(r.missing), r.missing[:min(len(r.missing), 10)])
	}
	ctx := testbed.Ctx(tb)
	sha := mb.rels[pkg].sha
	ms, err := mb.bed.Server.Store().Mitigations(ctx, store.MitigationFilter{Artifact: sha})
	fatalIf(tb, err)
	if len(ms) != len(mb.fleet.Devices) {
		tb.Fatalf("%s round: %d mitigations recorded for %s, want %d", r.mode, len(ms), pkg, len(mb.fleet.Devices))
	}
	for _, d := range mb.fleet.Devices {
		h := mb.bed.History(d.ID)
		if len(h) == 0 || h[len(h)-1].State != string(report.StateDegraded) {
			tb.Fatalf("%s round: device %s's last stored report is not degraded: %+v", r.mode, d.ID, h)
		}
	}
}

// listGets times one signed GET of the revocation list (200, the whole
// list) by every device at once, and the same through the devices'
// transports to a bare net/http handler serving the same bytes over TLS.
func (mb *mitigationBed) listGets(tb testing.TB) (real, bare time.Duration) {
	tb.Helper()
	ctx := testbed.Ctx(tb)
	list, err := mb.bed.Admin.Revocations(ctx)
	fatalIf(tb, err)
	hs := httptest.NewUnstartedServer(bench.TimestampHandler(list, `"bare"`))
	hs.TLS = mb.bareTLS(tb)
	hs.StartTLS()
	defer hs.Close()
	bareURL := hs.URL
	timed := func(url func(*bench.SimDevice) string) time.Duration {
		start := time.Now()
		fatalIf(tb, mb.fleet.GetAll(ctx, url))
		return time.Since(start)
	}
	realURL := func(d *bench.SimDevice) string { return mb.bed.URL + "/v1/devices/" + d.ID + "/revocations" }
	bareOf := func(d *bench.SimDevice) string { return bareURL + "/v1/devices/" + d.ID + "/revocations" }
	timed(bareOf) // warm: connections to the bare server
	var rs, bs []time.Duration
	for range 3 {
		rs = append(rs, timed(realURL))
		bs = append(bs, timed(bareOf))
	}
	return bench.Median(rs), bench.Median(bs)
}

// bareTLS serves the bare reference with the server's own certificate,
// so the devices' transports (pinned to the key set's CA) accept it.
func (mb *mitigationBed) bareTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	_, cert, key := keyset.TLSFiles(filepath.Join(mb.bed.KeysDir, keyset.OnlineDir))
	tc, err := tlsutil.ServerConfig(cert, key)
	fatalIf(tb, err)
	return tc
}

// TestMitigationReachesEveryDevice is the smoke run of the mitigation
// figure: 20 simulated devices, a revocation polled for (every 500 ms)
// and one nudged (the devices' own poll is an hour, so only the nudge can
// bring the list): every device verifies the new list, reports its
// module degraded, and the server stores it.
func TestMitigationReachesEveryDevice(t *testing.T) {
	mb := newMitigationBed(t, 20, 2)
	poll := mb.round(t, "poll", 0, 500*time.Millisecond, time.Minute)
	t.Log(poll)
	mb.checkRound(t, poll)
	nudge := mb.round(t, "nudge", 1, 500*time.Millisecond, time.Minute)
	t.Log(nudge)
	mb.checkRound(t, nudge)
	real, bare := mb.listGets(t)
	t.Logf("20 list GETs at once: server %s, bare net/http %s", ms(real), ms(bare))
}

// TestMitigationFigures: the full run, 1,000 devices, figRounds rounds of
// each mode, alternating (-figures or ZTOTA_FIGURES=1; see
// docs/BENCHMARKS.md). Each percentile is the median over the rounds. It
// asserts only that every device was mitigated, nothing about timings.
func TestMitigationFigures(t *testing.T) {
	if !figuresOn() {
		t.Skip("run with -figures or ZTOTA_FIGURES=1 (takes a few minutes)")
	}
	n := figMitigationDevices
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("load average at start: %s", load)
	setup := time.Now()
	mb := newMitigationBed(t, n, 2*figRounds)
	fmt.Printf("set-up: certifier, server, %d devices enrolled: %s\n", n, ms(time.Since(setup)))
	var polls, nudges []roundResult
	for i := range figRounds {
		p := mb.round(t, "poll", 2*i, figMitigationPoll, 3*figMitigationPoll)
		fmt.Println(p)
		mb.checkRound(t, p)
		polls = append(polls, p)
		u := mb.round(t, "nudge", 2*i+1, figMitigationPoll, time.Minute)
		fmt.Println(u)
		mb.checkRound(t, u)
		nudges = append(nudges, u)
	}
	real, bare := mb.listGets(t)
	commits := commitRate(t, n)
	load, _ = os.ReadFile("/proc/loadavg")
	fmt.Printf("reference: %d list GETs at once %s (bare net/http %s); %d one-row SQLite commits in sequence (WAL, synchronous FULL): %.0f/s; load average at the end: %s",
		n, ms(real), ms(bare), n, commits, load)
	pct := func(rs []roundResult, p float64) float64 {
		var v []time.Duration
		for _, r := range rs {
			v = append(v, bench.Percentile(r.lat, p))
		}
		return sec(bench.Median(v))
	}
	seen := func(rs []roundResult, p float64) float64 {
		var v []time.Duration
		for _, r := range rs {
			v = append(v, bench.Percentile(r.seen, p))
		}
		return sec(bench.Median(v))
	}
	var listAt []time.Duration
	for _, r := range polls {
		listAt = append(listAt, r.list)
	}
	la := bench.Median(listAt)
	fmt.Printf("poll interval %s ± %.0f%%: the formula predicts p50 ≈ list stored + P/2 = %s, max ≈ list stored + %.1f P = %s\n",
		figMitigationPoll, mitigationJitter*100, ms(la+figMitigationPoll/2), 1+mitigationJitter, ms(la+time.Duration(float64(figMitigationPoll)*(1+mitigationJitter))))
	var ingests []float64
	for _, r := range nudges {
		ingests = append(ingests, ingest(r.lat))
	}
	ref := fmt.Sprintf("%d list GETs at once", n)
	figs := []bench.Figure{
		{Name: fmt.Sprintf("revocation → degraded, poll every %s, p50", figMitigationPoll), Value: pct(polls, 50), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "  poll, p99", Value: pct(polls, 99), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "  poll, max", Value: pct(polls, 100), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "revocation → degraded, nudged, p50", Value: pct(nudges, 50), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "  nudged, p99", Value: pct(nudges, 99), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "  nudged, max", Value: pct(nudges, 100), Unit: "s", RefName: ref, RefValue: sec(real), ValueAtMost: 2},
		{Name: "revocation seen on the device, poll, p50", Value: seen(polls, 50), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "  seen, poll, max", Value: seen(polls, 100), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "revocation seen on the device, nudged, p50", Value: seen(nudges, 50), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: "  seen, nudged, max", Value: seen(nudges, 100), Unit: "s", RefName: ref, RefValue: sec(real)},
		{Name: fmt.Sprintf("%d list GETs at once (server)", n), Value: sec(real), Unit: "s", RefName: "bare net/http, same bytes", RefValue: sec(bare)},
		{Name: "reports stored, nudged rounds", Value: bench.MedianFloat(ingests), Unit: "/s", RefName: "one-row SQLite commits", RefValue: commits},
	}
	fmt.Printf("\nrevocation → mitigation, %d simulated devices, median of %d rounds per mode (%s/%s, %d CPUs, %s)\n\n", n, figRounds, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fatalIf(t, bench.WriteTable(os.Stdout, figs))
	fmt.Println()
}

func sec(d time.Duration) float64 { return d.Seconds() }

// ingest is the rate at which the server stored the round's reports.
func ingest(lat []time.Duration) float64 {
	first, last := bench.Percentile(lat, 0), bench.Percentile(lat, 100)
	if last <= first {
		return 0
	}
	return float64(len(lat)-1) / (last - first).Seconds()
}
