package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/diskspace"
	"github.com/ztota/ztota/internal/fetch"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/tufclient"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Candidate is a target both repositories agree on, with its metadata.
type Candidate struct {
	Path     string
	Info     *metadata.TargetFiles
	SHA256   string
	Image    tufrepo.ImageMeta
	Director tufrepo.DirectorMeta
}

// ErrRefused wraps every policy refusal of an update.
var ErrRefused = errors.New("update refused")

func (a *Agent) server() string { return strings.TrimRight(a.cfg.ServerURL, "/") }

// checkIn asks, with conditional requests, whether either repository's
// timestamp changed since the last successful refresh. The ETags it sees
// are kept aside and remembered only once a refresh succeeds, so a change
// published during a refresh is seen on the next check-in.
func (a *Agent) checkIn(ctx context.Context) (changed bool, seen map[string]string, err error) {
	seen = map[string]string{}
	for _, u := range []string{a.server() + "/director/" + a.cfg.DeviceID + "/timestamp.json", a.server() + "/image/timestamp.json"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false, nil, err
		}
		if et := a.etags[u]; et != "" {
			req.Header.Set("If-None-Match", et)
		}
		resp, err := a.meta.Do(req)
		if err != nil {
			return false, nil, err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNotModified:
		case http.StatusOK:
			changed = true
			seen[u] = resp.Header.Get("ETag")
		default:
			return false, nil, fmt.Errorf("check-in %s: %s", u, resp.Status)
		}
	}
	return changed, seen, nil
}

const repoMapJSON = `{"repositories": {"director": [%q], "image": [%q]},
 "mapping": [{"paths": ["*", "*/*", "*/*/*"], "repositories": ["director", "image"], "threshold": 2, "terminating": true}]}`

// Refresh runs a full TUF refresh of both repositories with a fresh client
// and returns the targets assigned to this device's module that both
// repositories agree on (TAP 4: same length and hashes).
func (a *Agent) Refresh(ctx context.Context) ([]Candidate, error) {
	imgRoot, err := os.ReadFile(a.cfg.ImageRoot)
	if err != nil {
		return nil, fmt.Errorf("pinned image root: %w", err)
	}
	dirRoot, err := os.ReadFile(a.cfg.DirectorRoot)
	if err != nil {
		return nil, fmt.Errorf("pinned director root: %w", err)
	}
	dURL := a.server() + "/director/" + a.cfg.DeviceID
	iURL := a.server() + "/image"
	repos := map[string]tufclient.Options{
		// Device: this device's director documents must name it, or they
		// are refused before go-tuf trusts any of their versions.
		"director": {MetadataURL: dURL, MetadataDir: filepath.Join(a.cfg.DataDir, "tuf", "director"), TrustedRoot: dirRoot, HTTPClient: a.meta, Device: a.cfg.DeviceID},
		"image":    {MetadataURL: iURL, MetadataDir: filepath.Join(a.cfg.DataDir, "tuf", "image"), TrustedRoot: imgRoot, HTTPClient: a.meta},
	}
	client, err := tufclient.NewMultiRepo(ctx, repos, []byte(fmt.Sprintf(repoMapJSON, dURL, iURL)))
	if err != nil {
		return nil, err
	}
	if err := client.Refresh(); err != nil {
		if errors.Is(err, tufrepo.ErrNotForDevice) {
			// Another device's director metadata (a replay on the path):
			// nothing of it was trusted; refresh fully on the next
			// check-in, whatever the conditional check-in says.
			a.retry = true
		}
		return nil, fmt.Errorf("refreshing metadata: %w", err)
	}
	dir := client.TUFClients["director"]
	img := client.TUFClients["image"]
	paths := make([]string, 0)
	for p := range dir.GetTopLevelTargets() {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []Candidate
	for _, p := range paths {
		if err := tufrepo.CheckTargetPath(p); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		info, _, err := client.GetTargetInfo(p)
		if err != nil {
			return nil, fmt.Errorf("%w: director and image repository disagree on %s: %v", ErrRefused, p, err)
		}
		dinfo, err := dir.GetTargetInfo(p)
		if err != nil {
			return nil, err
		}
		iinfo, err := img.GetTargetInfo(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not in the image repository: %v", ErrRefused, p, err)
		}
		im, err := tufrepo.ParseImageMeta(iinfo)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRefused, p, err)
		}
		dm, err := tufrepo.ParseDirectorMeta(dinfo)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRefused, p, err)
		}
		sha, err := tufrepo.SHA256(info)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		info.Path = p
		out = append(out, Candidate{Path: p, Info: info, SHA256: hex.EncodeToString(sha), Image: im, Director: dm})
	}
	return out, nil
}

// pruneDownloads removes downloads other than keep (left behind by a
// crash between switching slots and cleaning up, or by an abandoned update).
func (a *Agent) pruneDownloads(m *module, keep string) {
	dir := m.downloadDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Name() != keep {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// checkPolicy is the device's own say: the target must be for this device
// and its hardware, of the configured module, not larger than allowed, not
// older than what runs (release counter), and the two repositories must
// give it the same length and sha256.
func (a *Agent) checkPolicy(ctx context.Context, m *module, c Candidate) error {
	if c.Director.DeviceID != a.cfg.DeviceID {
		return fmt.Errorf("%w: %s is assigned to device %s, not %s", ErrRefused, c.Path, c.Director.DeviceID, a.cfg.DeviceID)
	}
	if c.Director.HardwareID != a.cfg.HardwareID || !c.Image.Supports(a.cfg.HardwareID) {
		return fmt.Errorf("%w: %s is for hardware %v, this device is %s", ErrRefused, c.Path, c.Image.HardwareIDs, a.cfg.HardwareID)
	}
	if c.Image.Module != m.name() {
		return fmt.Errorf("%w: %s is for module %s, not %s", ErrRefused, c.Path, c.Image.Module, m.name())
	}
	if c.Info.Length > a.cfg.MaxArtifact {
		return fmt.Errorf("%w: %s is %d bytes, above this device's limit of %d", ErrRefused, c.Path, c.Info.Length, a.cfg.MaxArtifact)
	}
	floor, err := a.floor(ctx, m)
	if err != nil {
		return err
	}
	if c.Image.ReleaseCounter < floor {
		return fmt.Errorf("%w: rollback: %s has release counter %d, below the installed %d", ErrRefused, c.Path, c.Image.ReleaseCounter, floor)
	}
	return a.crossCheck(c)
}

// floor is the anti-rollback floor: the highest of the persisted floor and
// the committed slot's release counter (the slot state is written
// atomically with the commit, so a crash or a failed save of state.json
// after a commit cannot lower it).
func (a *Agent) floor(ctx context.Context, m *module) (uint64, error) {
	st, err := m.slots.State(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the slot state for the release counter floor: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ms := a.ms(m)
	if cur, ok := st.Slots[st.Active]; ok && st.Active != "" && cur.ReleaseCounter > ms.Floor {
		ms.Floor = cur.ReleaseCounter
	}
	return ms.Floor, nil
}

// crossCheck compares, itself, the length and sha256 that the image
// repository and the director give c in the targets metadata the refresh
// just trusted (in addition to the multi-repository client's check).
func (a *Agent) crossCheck(c Candidate) error {
	var got [2]*metadata.TargetFiles
	for i, repo := range []string{"image", "director"} {
		data, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "tuf", repo, "targets.json"))
		if err != nil {
			return fmt.Errorf("reading the trusted %s targets: %w", repo, err)
		}
		md, err := tufrepo.Parse[metadata.TargetsType](data)
		if err != nil {
			return fmt.Errorf("the trusted %s targets: %w", repo, err)
		}
		tf, ok := md.Signed.Targets[c.Path]
		if !ok {
			return fmt.Errorf("%w: %s is not in the %s repository's targets", ErrRefused, c.Path, repo)
		}
		got[i] = tf
	}
	img, dir := got[0], got[1]
	is, ds := hex.EncodeToString(img.Hashes["sha256"]), hex.EncodeToString(dir.Hashes["sha256"])
	if is == "" || is != ds || is != c.SHA256 || img.Length != dir.Length || img.Length != c.Info.Length {
		return fmt.Errorf("%w: director and image repository disagree on %s: image %d bytes sha256 %q, director %d bytes sha256 %q",
			ErrRefused, c.Path, img.Length, is, dir.Length, ds)
	}
	return nil
}

// Cycle is one check-in: refresh if anything changed, and install what the
// director assigns to each module if the device's policy accepts it.
func (a *Agent) Cycle(ctx context.Context) error {
	changed, seen, err := a.checkIn(ctx)
	if err != nil {
		return err
	}
	bad := false
	for _, m := range a.mods {
		bad = bad || m.activeBad
	}
	if !changed && !a.retry && !bad && time.Since(a.lastFull) < time.Duration(a.cfg.FullRefresh) {
		return nil
	}
	a.retry = false
	cands, err := a.Refresh(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// The agent is stopping (SIGTERM mid-refresh): nothing
			// failed, and nothing is reported.
			return err
		}
		// A verdict on the signed metadata (the repositories disagree)
		// is a refusal; anything else (network, expired or replayed
		// metadata, a mirror that lies) is a failure that may pass.
		st := report.StateFailed
		if classify(err) == classFinal {
			st = report.StateRefused
		}
		a.reportOnce(ctx, st, "", "", err.Error())
		return err
	}
	a.lastFull = time.Now()
	for u, et := range seen {
		a.etags[u] = et
	}
	if a.certRoot != nil {
		// Every full refresh also refreshes the revocation list.
		a.lastList = time.Now()
		if err := a.CheckRevocations(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("revocation list", "err", err)
		}
	}
	// Each target goes to the module its image metadata names; a target
	// addressed to another device goes to every module, so that
	// checkPolicy refuses it loudly; a target for a module this agent
	// does not supervise is refused and reported.
	mine := map[*module][]Candidate{}
	var errs []error
	for _, c := range cands {
		if c.Director.DeviceID != a.cfg.DeviceID {
			for _, m := range a.mods {
				mine[m] = append(mine[m], c)
			}
			continue
		}
		m := a.byName[c.Image.Module]
		if m == nil {
			errs = append(errs, a.refuseUnknown(ctx, c))
			continue
		}
		mine[m] = append(mine[m], c)
	}
	for _, m := range a.mods {
		if err := a.cycleModule(ctx, m, mine[m]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refuseUnknown refuses a target for a module this agent does not
// supervise, reporting it once per assignment.
func (a *Agent) refuseUnknown(ctx context.Context, c Candidate) error {
	err := fmt.Errorf("%w: %s is for module %s, which this device does not run", ErrRefused, c.Path, c.Image.Module)
	key := announceKey(c)
	if a.unknownSeen[key] {
		return nil
	}
	a.unknownSeen[key] = true
	x := reportExtra{}
	if tufrepo.ValidIdent(c.Image.Module) {
		x.module = c.Image.Module
	}
	a.reportX(ctx, x, report.StateRefused, c.Path, c.Image.Version, 0, err.Error())
	return err
}

// cycleModule acts on the targets the director assigns to module m.
func (a *Agent) cycleModule(ctx context.Context, m *module, mine []Candidate) error {
	if len(mine) == 0 {
		return nil
	}
	if len(mine) > 1 {
		err := fmt.Errorf("%w: director lists %d targets for module %s", ErrRefused, len(mine), m.name())
		a.mreportOnce(ctx, m, report.StateRefused, "", "", err.Error())
		return err
	}
	c := mine[0]
	st, err := m.slots.State(ctx)
	if err != nil {
		return err
	}
	if cur, ok := st.Slots[st.Active]; ok && st.Active != "" && cur.SHA256 == c.SHA256 && !m.activeBad {
		m.lastErr = ""
		a.pruneDownloads(m, "")
		m.clearFailures()
		if err := a.checkPolicy(ctx, m, c); err != nil {
			// The running bytes under a name this device's policy refuses
			// (another hardware, a lower release counter): answer the
			// deployment, but the bytes themselves stay trusted.
			if classify(err) != classFinal {
				return err
			}
			if key := announceKey(c); c.Director.Deployment != "" && a.answered(m) != key {
				a.mreport(ctx, m, report.StateRefused, c.Path, c.Image.Version, 0, err.Error())
				if serr := a.setAnnounced(m, key); serr != nil {
					return serr
				}
				return err
			}
			return nil
		}
		return a.announce(ctx, m, c, cur)
	}
	a.mu.Lock()
	why, refused := a.ms(m).Refused[c.SHA256]
	a.mu.Unlock()
	if refused {
		// Not retried; but every assignment gets an answer, so that a
		// deployment of a release refused before ends.
		a.log.Debug("target was refused before; not retrying", "module", m.name(), "target", c.Path, "why", why.Why)
		if key := announceKey(c); c.Director.Deployment != "" && a.answered(m) != key {
			a.mreport(ctx, m, report.StateRefused, c.Path, c.Image.Version, 0, "refused before: "+why.Why)
			return a.setAnnounced(m, key)
		}
		return nil
	}
	if err := a.checkPolicy(ctx, m, c); err != nil {
		if classify(err) != classFinal {
			return err
		}
		a.refuse(ctx, m, c, err)
		return err
	}
	// Certification, before any byte is downloaded (cert.go).
	if err := a.checkCertificate(ctx, c); err != nil {
		if ctx.Err() != nil {
			return err
		}
		if classify(err) == classFinal {
			a.refuse(ctx, m, c, err)
			return err
		}
		return a.transient(ctx, m, c, report.StateVerifying, err, certAttempts(err))
	}
	m.lastErr = ""
	return a.install(ctx, m, c, true)
}

// announceKey names one assignment: the deployment and the target.
func announceKey(c Candidate) string { return c.Director.Deployment + " " + c.Path }

// announce answers a deployment of the bytes the device already runs:
// once per deployment and target name, it reports "committed" for the
// assigned target name (the server matches reports on it), so that a
// deployment of the same bytes under a new name, or of the release the
// device runs, completes. An assignment outside any deployment (the
// server pointing the device back at what it runs) needs no answer.
func (a *Agent) announce(ctx context.Context, m *module, c Candidate, cur slot.Meta) error {
	key := announceKey(c)
	if c.Director.Deployment == "" || a.answered(m) == key {
		return nil // no deployment waits for an answer, or it has one
	}
	detail := ""
	if cur.Target != c.Path {
		detail = "already running these bytes, installed as " + cur.Target
	}
	a.mreport(ctx, m, report.StateCommitted, c.Path, c.Image.Version, 0, detail)
	return a.setAnnounced(m, key)
}

// answered is the last assignment the device answered (announceKey).
func (a *Agent) answered(m *module) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ms(m).Announced
}

func (a *Agent) setAnnounced(m *module, key string) error {
	a.mu.Lock()
	a.ms(m).Announced = key
	err := saveState(a.statePath(), a.st)
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}

// reportOnce reports an error state unless the same error was the last one
// reported, so a repeating failure does not flood the outbox.
func (a *Agent) reportOnce(ctx context.Context, st report.State, target, version, detail string) {
	if detail == a.lastErr {
		return
	}
	a.lastErr = detail
	a.report(ctx, st, target, version, 0, detail)
}

// mreportOnce is reportOnce for a report about module m.
func (a *Agent) mreportOnce(ctx context.Context, m *module, st report.State, target, version, detail string) {
	if detail == m.lastErr {
		return
	}
	m.lastErr = detail
	a.mreport(ctx, m, st, target, version, 0, detail)
}

// refuse records a final verdict on c and reports it.
func (a *Agent) refuse(ctx context.Context, m *module, c Candidate, err error) {
	a.markRefused(m, c.SHA256, err.Error())
	a.mreport(ctx, m, report.StateRefused, c.Path, c.Image.Version, 0, err.Error())
	if err := a.setAnnounced(m, announceKey(c)); err != nil {
		a.log.Error("saving state", "err", err)
	}
}

// clearFailures forgets a run of transient failures (the release
// installed, or another one is assigned).
func (m *module) clearFailures() {
	m.failSHA, m.fails, m.failRuns, m.retryAt = "", 0, 0, time.Time{}
}

// transient handles a transient failure of step while installing c: the
// partial download stays (the caller already emptied it if its bytes were
// proven wrong), the agent retries after a jittered back-off, and the
// failure is reported "failed" only once it persists (failedAfter failed
// attempts in a row); before that it is reported as the step's own
// progress state with the reason. A cancelled context (the agent is
// stopping) is neither counted nor reported. n is how many attempts err
// stands for.
func (a *Agent) transient(ctx context.Context, m *module, c Candidate, step report.State, err error, n int) error {
	if ctx.Err() != nil {
		return err
	}
	a.retry = true
	if m.failSHA != c.SHA256 {
		m.clearFailures()
		m.failSHA = c.SHA256
	}
	m.fails += n
	m.failRuns++
	wait := backoff(m.failRuns)
	m.retryAt = time.Now().Add(wait)
	err = fmt.Errorf("will retry: %w", err)
	a.log.Warn("update step failed; retrying later", "module", m.name(), "target", c.Path, "step", step, "attempts", m.fails, "in", wait.Round(time.Second), "err", err)
	if m.fails >= failedAfter {
		a.mreport(ctx, m, report.StateFailed, c.Path, c.Image.Version, 0, err.Error())
	} else {
		a.mreport(ctx, m, step, c.Path, c.Image.Version, 0, err.Error())
	}
	return err
}

// downloadAttempts is how many failed attempts a download error stands
// for: the HTTP attempts of a download that gave up, 1 for another network
// failure, and failedAfter for a failure of this device's disk (reported
// at once: someone must free space or check the storage).
func downloadAttempts(err error) int {
	var me *fetch.MirrorErrors
	switch {
	case errors.As(err, &me):
		return max(len(me.Causes), 1)
	case errors.Is(err, fetch.ErrSlow), errors.Is(err, fetch.ErrShort), errors.Is(err, fetch.ErrBadResponse):
		return 1
	}
	return failedAfter
}

// install downloads, verifies and stages c, then switches to it. Every
// failure is classified (classify): final verdicts are refused for good,
// anything else is retried.
// announce: the assignment is recorded as answered (not for a backup,
// which no deployment assigned).
func (a *Agent) install(ctx context.Context, m *module, c Candidate, announce bool) error {
	a.mreport(ctx, m, report.StateDownloading, c.Path, c.Image.Version, 0, "")
	dl := filepath.Join(m.downloadDir(), c.SHA256)
	a.pruneDownloads(m, c.SHA256)
	f, err := os.OpenFile(dl, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return a.transient(ctx, m, c, report.StateDownloading, fmt.Errorf("download: %w", err), failedAfter)
	}
	defer f.Close()
	sha, _ := hex.DecodeString(c.SHA256)
	want := fetch.Want{Length: c.Info.Length, SHA256: sha}
	// Room for what is left to download and for the unpacked slot (a tar
	// unpacks to about its own size), with a margin.
	var held int64
	if fi, err := f.Stat(); err == nil {
		held = fi.Size()
	}
	need := uint64(c.Info.Length-held) + uint64(c.Info.Length) + 1<<20
	if err := diskspace.Check(a.freeSpace, a.cfg.DataDir, need); err != nil {
		return a.transient(ctx, m, c, report.StateDownloading, err, failedAfter)
	}
	dir, base := path.Split(c.Path)
	mirror := a.server() + "/image/targets/" + dir + c.SHA256 + "." + base
	lastPct := 0
	_, err = fetch.Download(ctx, f, want, fetch.Options{
		Client:      a.bulk,
		Mirrors:     []string{mirror},
		MinRate:     a.cfg.MinRate,
		RateWindow:  time.Duration(a.cfg.RateWindow),
		BeforeWrite: a.writeFault,
		Progress: func(done, total int64) {
			if total <= 0 {
				return
			}
			pct := int(done * 100 / total)
			if pct >= lastPct+25 && pct < 100 {
				lastPct = pct - pct%25
				a.mreport(ctx, m, report.StateDownloading, c.Path, c.Image.Version, lastPct, "")
			}
		},
	})
	if err != nil {
		err = fmt.Errorf("download: %w", err)
		if classify(err) == classFinal {
			a.refuse(ctx, m, c, err)
			os.Remove(dl)
			return err
		}
		if wrongBytes(err) {
			f.Truncate(0) // proven wrong: the next attempt starts from zero
		}
		return a.transient(ctx, m, c, report.StateDownloading, err, downloadAttempts(err))
	}
	a.mreport(ctx, m, report.StateDownloading, c.Path, c.Image.Version, 100, "")
	a.haltAt(StepDownloaded)
	a.mreport(ctx, m, report.StateVerifying, c.Path, c.Image.Version, 0, "")
	// Re-verify from the same open file: what is staged is what was checked.
	if err := fetch.HashFile(ctx, f, want); err != nil {
		f.Truncate(0)
		return a.transient(ctx, m, c, report.StateVerifying, fmt.Errorf("verify: %w", err), failedAfter)
	}
	a.mreport(ctx, m, report.StateInstalling, c.Path, c.Image.Version, 0, "")
	meta := slot.Meta{Target: c.Path, Name: c.Image.Name, Version: c.Image.Version, ReleaseCounter: c.Image.ReleaseCounter,
		SHA256: c.SHA256, Length: c.Info.Length, InstalledAt: time.Now().UTC()}
	if err := m.slots.Stage(ctx, f, meta); err != nil {
		err = fmt.Errorf("install: %w", err)
		if classify(err) == classFinal {
			a.refuse(ctx, m, c, err)
			os.Remove(dl)
			return err
		}
		if wrongBytes(err) {
			f.Truncate(0)
		}
		return a.transient(ctx, m, c, report.StateInstalling, err, failedAfter)
	}
	a.haltAt(StepStaged)
	if err := m.slots.SetPending(ctx); err != nil {
		return a.transient(ctx, m, c, report.StateInstalling, fmt.Errorf("switch: %w", err), failedAfter)
	}
	a.haltAt(StepPending)
	m.clearFailures()
	if announce {
		if err := a.setAnnounced(m, announceKey(c)); err != nil {
			a.log.Error("saving state", "err", err)
		}
	}
	a.setProfiles(m, c)
	os.Remove(dl)
	a.mreport(ctx, m, report.StateRestarting, c.Path, c.Image.Version, 0, "")
	a.stopModule(m)
	return a.boot(ctx, m)
}
