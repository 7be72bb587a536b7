// Package demo runs the whole update story on one machine: keys, a server,
// several device agents with directory slots, and a real sample module
// built as v1 (healthy) and v2 (fails its health check). It prints a
// readable timeline of every status report the server receives.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ztota/ztota/examples/samplemodule"
	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Options of a demo run.
type Options struct {
	Devices int
	Keep    bool
	Out     io.Writer
	Log     *slog.Logger // agents' and server's log; nil discards it
	Timeout time.Duration
}

// Result summarises a run, for tests.
type Result struct {
	V1Committed  int
	V2RolledBack int
	Reports      int
	Dir          string
}

// Run runs the demo.
func Run(ctx context.Context, o Options) error {
	_, err := RunResult(ctx, o)
	return err
}

// RunResult runs the demo and returns what happened.
func RunResult(ctx context.Context, o Options) (Result, error) {
	if o.Devices <= 0 {
		o.Devices = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil || !o.Keep {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var res Result
	dir, err := os.MkdirTemp("", "ztota-demo-")
	if err != nil {
		return res, err
	}
	res.Dir = dir
	if !o.Keep {
		defer os.RemoveAll(dir)
	}
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(o.Out, "[%6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	say("workspace %s", dir)
	keysDir := filepath.Join(dir, "keys")
	if err := keyset.Init(keysDir, keyset.Options{}); err != nil {
		return res, err
	}
	say("integrator and operator keys made (ed25519): offline root+targets, online snapshot/timestamp/director")

	caFile, certFile, keyFile := keyset.TLSFiles(filepath.Join(keysDir, keyset.OnlineDir))
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "server"), KeysDir: filepath.Join(keysDir, keyset.OnlineDir), Logger: o.Log,
		TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		return res, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	url := "https://" + ln.Addr().String()
	sctx, stopServer := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(sctx, ln) }()
	defer func() { stopServer(); wg.Wait() }()
	say("server listening on %s (TLS with the key set's own CA, pinned by every client; SQLite, content-addressed artifacts)", url)

	tok, err := os.ReadFile(filepath.Join(dir, "server", server.AdminTokenFile))
	if err != nil {
		return res, err
	}
	api := apiclient.New(url, strings.TrimSpace(string(tok)))
	if api.HTTP.Transport, err = tlsutil.Transport(caFile); err != nil {
		return res, err
	}

	// Devices.
	actx, stopAgents := context.WithCancel(ctx)
	var awg sync.WaitGroup
	defer func() { stopAgents(); awg.Wait() }()
	var ids []string
	for i := 1; i <= o.Devices; i++ {
		id := fmt.Sprintf("device-%d", i)
		ids = append(ids, id)
		et, err := api.EnrollToken(ctx, "demo", time.Hour)
		if err != nil {
			return res, err
		}
		ddir := filepath.Join(dir, id)
		cfg := &agent.Config{
			DeviceID: id, HardwareID: "demo-board", ServerURL: url, ServerCA: caFile, DataDir: ddir,
			ImageRoot:    filepath.Join(keysDir, keyset.OnlineDir, keyset.ImageRootFile),
			DirectorRoot: filepath.Join(keysDir, keyset.OnlineDir, keyset.DirectorRootFile),
			EnrollToken:  et,
			Module: agent.Module{Name: "app", Command: []string{"bin/app"}, Env: []string{"ZTOTA_STATE_DIR=" + ddir},
				Health: agent.Health{StayUp: agent.Duration(time.Second), Command: []string{"bin/app", "health"}}},
			PollInterval: agent.Duration(300 * time.Millisecond),
		}
		if err := cfg.Validate(); err != nil {
			return res, err
		}
		a, err := agent.New(ctx, cfg, o.Log)
		if err != nil {
			return res, err
		}
		if err := a.Enroll(ctx); err != nil {
			return res, err
		}
		awg.Add(1)
		go func() { defer awg.Done(); a.Run(actx) }()
	}
	say("%d devices enrolled with their own ed25519 keys (the one-time token proven, never sent); agents polling every 300ms", o.Devices)

	tl := &timeline{st: srv.Store(), ids: ids, say: say, seen: map[string]bool{}}
	build := func(version string, healthy bool) (string, error) {
		return samplemodule.BuildBundle(ctx, filepath.Join(dir, "build"), version, healthy)
	}
	os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	v1, err := build("1.0.0", true)
	if err != nil {
		return res, err
	}
	v2, err := build("2.0.0", false)
	if err != nil {
		return res, err
	}
	say("sample module built: v1.0.0 (healthy) and v2.0.0 (fails its health check)")

	publish := func(path, version string, counter uint64) (release.Result, error) {
		return release.Publish(ctx, api, release.Options{Artifact: path, KeysDir: keysDir,
			Meta: tufrepo.ImageMeta{Name: "app", Version: version, ReleaseCounter: counter, HardwareIDs: []string{"demo-board"}, Module: "app"}})
	}
	r1, err := publish(v1, "1.0.0", 1)
	if err != nil {
		return res, err
	}
	say("released %s (counter 1), image targets signed offline, version %d", r1.Target, r1.TargetsVersion)
	d1, err := api.Deploy(ctx, server.DeployRequest{Release: r1.Target, Group: "demo", Waves: []float64{34, 100}, FailureThreshold: 0.5})
	if err != nil {
		return res, err
	}
	say("deployment %s: waves 34%% then 100%%, halts above 50%% failures", d1.ID)
	if err := tl.until(ctx, func() (bool, error) { return deploymentDone(ctx, api, d1.ID) }); err != nil {
		return res, fmt.Errorf("waiting for v1: %w", err)
	}
	v, _ := api.Deployment(ctx, d1.ID)
	for _, d := range v.Devices {
		if d.Status == store.DevCommitted {
			res.V1Committed++
		}
	}
	say("deployment %s %s: %d/%d committed", d1.ID, v.Status, res.V1Committed, len(v.Devices))

	r2, err := publish(v2, "2.0.0", 2)
	if err != nil {
		return res, err
	}
	say("released %s (counter 2)", r2.Target)
	d2, err := api.Deploy(ctx, server.DeployRequest{Release: r2.Target, Group: "demo", Waves: []float64{100}, FailureThreshold: 1})
	if err != nil {
		return res, err
	}
	say("deployment %s: all devices at once", d2.ID)
	if err := tl.until(ctx, func() (bool, error) { return deploymentDone(ctx, api, d2.ID) }); err != nil {
		return res, fmt.Errorf("waiting for v2: %w", err)
	}
	v, _ = api.Deployment(ctx, d2.ID)
	for _, d := range v.Devices {
		if d.Status == store.DevFailed {
			res.V2RolledBack++
		}
	}
	devs, err := api.Devices(ctx, "demo")
	if err != nil {
		return res, err
	}
	say("deployment %s %s: %d/%d rolled back", d2.ID, v.Status, res.V2RolledBack, len(v.Devices))
	for _, d := range devs {
		say("  %s runs %s", d.ID, d.Installed)
	}
	res.Reports = len(tl.seen)
	say("%d signed status reports received; every device still runs %s", res.Reports, r1.Target)
	if res.V1Committed != o.Devices || res.V2RolledBack != o.Devices {
		return res, errors.New("the demo did not end as expected: see the timeline above")
	}
	return res, nil
}

func deploymentDone(ctx context.Context, api *apiclient.Client, id string) (bool, error) {
	v, err := api.Deployment(ctx, id)
	if err != nil {
		return false, err
	}
	return v.Status != store.DeployRunning, nil
}

// timeline prints every new status report, in time order.
type timeline struct {
	st   *store.Store
	ids  []string
	say  func(string, ...any)
	seen map[string]bool
}

func (t *timeline) poll(ctx context.Context) error {
	var fresh []store.Report
	for _, id := range t.ids {
		h, err := t.st.History(ctx, id, 0)
		if err != nil {
			return err
		}
		for _, r := range h {
			if !t.seen[r.ID] {
				t.seen[r.ID] = true
				fresh = append(fresh, r)
			}
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].Time.Before(fresh[j].Time) })
	for _, r := range fresh {
		line := fmt.Sprintf("  %-9s %-16s %s", r.DeviceID, r.State, r.Target)
		if r.State == "downloading" {
			line += fmt.Sprintf(" %d%%", r.Progress)
		}
		if r.Detail != "" {
			line += "  (" + r.Detail + ")"
		}
		t.say("%s", line)
	}
	return nil
}

func (t *timeline) until(ctx context.Context, done func() (bool, error)) error {
	for {
		if err := t.poll(ctx); err != nil {
			return err
		}
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			time.Sleep(300 * time.Millisecond)
			return t.poll(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}
