package server

// What follows a mitigation (see mitigate.go):
//
//   - Automatic roll-out of the certified fix. For each open repair
//     request, the devices with an open mitigation and no fix yet get a
//     deployment of the first release of the same module with a higher
//     release counter than the revoked one that supports the device's
//     hardware, holds a verified passing certificate and is not revoked
//     (the certifier never revoked or failed its artifact). Devices are
//     grouped by the fix they get; one deployment per fix release, made
//     through the same code path as POST /v1/deployments (createDeployment:
//     gate, hardware and busy checks). The deployment is recorded on each
//     mitigation and on the repair request in the creating transaction,
//     so a restart or a second trigger never deploys twice; devices busy
//     in another running deployment are left to the next scan.
//     Triggers: a mitigation recorded, a certificate stored (PUT or a
//     certifier "certificate"/passing re-inspection event), a release
//     published, and a scan at start and every RepairConfig.ScanInterval,
//     so a crash loses nothing.
//   - Closing. A mitigation closes when its device reports "committed" or
//     "recovered" of a release whose artifact is not the revoked one and
//     which is not the revoked release's designated backup; a
//     decommissioned device's mitigations are abandoned. A repair request
//     closes when none of its mitigations is open any more.
//   - Repair webhooks (webhook.go) on open, fix deployed and close.

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

// RepairConfig configures what follows a mitigation.
type RepairConfig struct {
	// NoAutoFix turns the automatic roll-out of the certified fix off
	// (ztota server --auto-fix=false): repair requests stay open until an
	// operator deploys a fix.
	NoAutoFix bool
	// Waves and FailureThreshold of the fix deployments (default [10,
	// 100] and 0.1).
	Waves            []float64
	FailureThreshold float64
	// ScanInterval is how often open repair requests are scanned for a
	// fix (default 30s).
	ScanInterval time.Duration
	// Webhook is the URL that receives the signed repair webhooks (""
	// none; https, or http with InsecureHTTP); WebhookCAFile pins its CA.
	Webhook, WebhookCAFile string
	// WebhookTimeout bounds one delivery (default 10s); WebhookMaxBackoff
	// the delay between retries (default 1 min).
	WebhookTimeout, WebhookMaxBackoff time.Duration
}

// Default fix roll-out.
var defaultFixWaves = []float64{10, 100}

const (
	defaultFixThreshold    = 0.1
	defaultRepairScan      = 30 * time.Second
	defaultWebhookTimeout  = 10 * time.Second
	defaultWebhookBackoff  = time.Minute
	webhookMinBackoff      = 100 * time.Millisecond
	webhookPoll            = 2 * time.Second
	maxWebhookResponseRead = 64 << 10
)

// repairState is the state of the fix roll-out and webhook workers.
type repairState struct {
	scanMu sync.Mutex // one fix scan at a time
	wake   chan struct{}
	hook   *webhookSender // nil: no webhook configured
	key    ed25519.PrivateKey
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// checkRepairConfig checks the configuration and sets its defaults
// (called by initFeed, before anything is stored).
func (s *Server) checkRepairConfig() error {
	c := &s.cfg.Repair
	if len(c.Waves) == 0 {
		c.Waves = slices.Clone(defaultFixWaves)
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = defaultFixThreshold
	}
	check := DeployRequest{Devices: []string{"x"}, Waves: slices.Clone(c.Waves), FailureThreshold: c.FailureThreshold}
	if err := check.Validate(); err != nil {
		return fmt.Errorf("server: fix deployment waves: %v", err)
	}
	if c.ScanInterval <= 0 {
		c.ScanInterval = defaultRepairScan
	}
	if c.WebhookTimeout <= 0 {
		c.WebhookTimeout = defaultWebhookTimeout
	}
	if c.WebhookMaxBackoff <= 0 {
		c.WebhookMaxBackoff = defaultWebhookBackoff
	}
	_, err := s.webhookClient()
	return err
}

// initRepair starts the fix scanner (which scans once at once) and the
// webhook sender. Called by New.
func (s *Server) initRepair() error {
	key, err := s.loadWebhookKey()
	if err != nil {
		return err
	}
	hook, err := s.newWebhookSender(key)
	if err != nil {
		return err
	}
	rs := &repairState{wake: make(chan struct{}, 1), hook: hook, key: key}
	s.repair = rs
	ctx, cancel := context.WithCancel(context.Background())
	rs.cancel = cancel
	rs.wg.Add(1)
	go func() { defer rs.wg.Done(); s.fixLoop(ctx) }()
	if hook != nil {
		rs.wg.Add(1)
		go func() { defer rs.wg.Done(); hook.run(ctx) }()
	}
	return nil
}

// stopRepair stops the workers (Close).
func (s *Server) stopRepair() {
	if s.repair == nil {
		return
	}
	s.repair.cancel()
	s.repair.wg.Wait()
}

// kickFix asks the fix scanner to scan now (never blocks).
func (s *Server) kickFix() {
	if s.repair == nil {
		return
	}
	select {
	case s.repair.wake <- struct{}{}:
	default:
	}
}

// nudgeDevices asks devices to refresh now (their revocation list, then
// a check-in): the nudge long polls (nudge.go), and Config.OnNudge if set.
func (s *Server) nudgeDevices(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.Nudge(ids...)
	if s.cfg.OnNudge != nil {
		s.cfg.OnNudge(ids...)
	}
}

// fixLoop scans at start, when kicked and every ScanInterval.
func (s *Server) fixLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Repair.ScanInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		if _, err := s.Autofix(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("fix roll-out scan", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-s.repair.wake:
		case <-t.C:
		}
	}
}

// FixDeployment is a deployment the fix scan created.
type FixDeployment struct {
	Repair     int64    `json:"repair"`
	Release    string   `json:"release"`
	Deployment string   `json:"deployment"`
	Devices    []string `json:"devices"`
	Busy       []string `json:"busy,omitempty"` // left to the next scan
}

// Autofix scans the open repair requests once and deploys the certified
// fix to their mitigated devices that have none yet (see the file's
// comment). It returns the deployments it created.
func (s *Server) Autofix(ctx context.Context) ([]FixDeployment, error) {
	if s.cfg.Repair.NoAutoFix || s.cfg.CertifierRoot == nil || s.repair == nil {
		return nil, nil // nothing is certified without a certifier root
	}
	s.repair.scanMu.Lock()
	defer s.repair.scanMu.Unlock()
	ids, err := store.OpenRepairIDsTx(ctx, s.st.DB())
	if err != nil {
		return nil, err
	}
	var out []FixDeployment
	var errs []error
	for _, id := range ids {
		fds, err := s.fixRepair(ctx, id)
		out = append(out, fds...)
		if err != nil {
			errs = append(errs, fmt.Errorf("repair request %d: %w", id, err))
		}
	}
	return out, errors.Join(errs...)
}

// fixRepair deploys the fix to one repair request's devices.
func (s *Server) fixRepair(ctx context.Context, repair int64) ([]FixDeployment, error) {
	rep, err := s.st.Repair(ctx, repair)
	if err != nil {
		return nil, err
	}
	ms, err := s.st.Mitigations(ctx, store.MitigationFilter{State: store.MitigationOpen, Repair: repair})
	if err != nil {
		return nil, err
	}
	type group struct {
		devs []string
		mids []int64
	}
	groups := map[string]*group{}
	fixes := map[string]string{} // revoked target + hardware -> fix ("" none)
	for _, m := range ms {
		if m.FixDeployment != "" {
			continue // acted on once
		}
		dev, err := s.st.Device(ctx, m.DeviceID)
		if err != nil {
			return nil, err
		}
		if !dev.Decommissioned.IsZero() {
			continue
		}
		k := m.Target + "\x00" + dev.HardwareID
		fix, ok := fixes[k]
		if !ok {
			if fix, err = s.fixFor(ctx, rep, m.Target, dev.HardwareID); err != nil {
				return nil, err
			}
			fixes[k] = fix
		}
		if fix == "" {
			continue
		}
		g := groups[fix]
		if g == nil {
			g = &group{}
			groups[fix] = g
		}
		g.devs = append(g.devs, m.DeviceID)
		g.mids = append(g.mids, m.ID)
	}
	rels := make([]string, 0, len(groups))
	for r := range groups {
		rels = append(rels, r)
	}
	sort.Strings(rels)
	var out []FixDeployment
	for _, rel := range rels {
		g := groups[rel]
		byDev := make(map[string]int64, len(g.devs))
		for i, d := range g.devs {
			byDev[d] = g.mids[i]
		}
		req := DeployRequest{Release: rel, Devices: g.devs, Waves: slices.Clone(s.cfg.Repair.Waves), FailureThreshold: s.cfg.Repair.FailureThreshold}
		var devs []string
		dep, _, busy, err := s.createDeployment(ctx, req, true, func(tx *sql.Tx, dep store.Deployment, ids []string) error {
			devs = ids
			mids := make([]int64, len(ids))
			for i, d := range ids {
				mids[i] = byDev[d]
			}
			now := s.cfg.Now().UTC()
			if err := store.SetFixTx(ctx, tx, repair, mids, rel, dep.ID, now); err != nil {
				return err
			}
			return s.queueWebhookTx(ctx, tx, hookFixDeployed, repair, now)
		})
		switch {
		case errors.Is(err, errAllBusy):
			s.log.Info("fix roll-out: every device is busy in another deployment; next scan", "repair", repair, "release", rel, "devices", g.devs)
			continue
		case errors.Is(err, store.ErrActed):
			continue // another trigger acted first
		case err != nil:
			s.log.Warn("fix roll-out: deployment refused", "repair", repair, "release", rel, "err", err)
			continue // e.g. the gate: the next scan tries again
		}
		s.log.Warn("fix roll-out: deployment created", "repair", repair, "artifact", rep.Artifact, "release", rel,
			"deployment", dep.ID, "devices", devs, "busy", busy)
		s.kickWebhook()
		s.nudgeDevices(devs)
		out = append(out, FixDeployment{Repair: repair, Release: rel, Deployment: dep.ID, Devices: devs, Busy: busy})
	}
	return out, nil
}

// fixFor returns the fix for devices of hardware hw running the revoked
// release target of repair rep: the release of the same module with the
// lowest release counter above the revoked one, for hw, whose artifact
// the certifier never revoked or failed and which passes the gate; ""
// when none.
func (s *Server) fixFor(ctx context.Context, rep store.Repair, target, hw string) (string, error) {
	revoked, err := s.st.Release(ctx, target)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	all, err := s.st.Releases(ctx)
	if err != nil {
		return "", err
	}
	var cands []store.Release
	for _, r := range all {
		if r.Module == revoked.Module && r.ReleaseCounter > revoked.ReleaseCounter && r.SHA256 != rep.Artifact &&
			slices.Contains(r.HardwareIDs, hw) {
			cands = append(cands, r)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].ReleaseCounter != cands[j].ReleaseCounter {
			return cands[i].ReleaseCounter < cands[j].ReleaseCounter
		}
		if !cands[i].Created.Equal(cands[j].Created) {
			return cands[i].Created.Before(cands[j].Created)
		}
		return cands[i].Target < cands[j].Target
	})
	for _, c := range cands {
		bad, err := store.HasRepairTx(ctx, s.st.DB(), c.SHA256)
		if err != nil {
			return "", err
		}
		if bad {
			continue
		}
		if _, err := s.gateRelease(ctx, c); err != nil {
			var he *httpError
			if errors.As(err, &he) {
				continue // not certified (yet), or revoked
			}
			return "", err
		}
		return c.Target, nil
	}
	return "", nil
}

// dropBusy leaves the busy devices out of dds and spreads the rest over
// the waves again; it returns the busy ones.
func dropBusy(busy map[string]string, dds []store.DeploymentDevice, waves []float64) ([]string, []store.DeploymentDevice) {
	var skipped []string
	var keep []store.DeploymentDevice
	for _, d := range dds {
		if _, ok := busy[d.DeviceID]; ok {
			skipped = append(skipped, d.DeviceID)
		} else {
			keep = append(keep, d)
		}
	}
	for i := range keep {
		keep[i].Wave = waveOf(i, len(keep), waves)
	}
	return skipped, keep
}

func deviceIDs(dds []store.DeploymentDevice) []string {
	ids := make([]string, len(dds))
	for i, d := range dds {
		ids[i] = d.DeviceID
	}
	return ids
}

// closeMitigationsTx closes dev's open mitigations when report r says it
// runs the fix: "committed" or "recovered" of a release whose artifact is
// not the revoked one and which is not the revoked release's backup. A
// repair request whose mitigations are then all closed closes. Called by
// onReportTx for every new report.
func (s *Server) closeMitigationsTx(ctx context.Context, tx *sql.Tx, dev string, r store.Report) error {
	if (r.State != "committed" && r.State != "recovered") || r.Target == "" {
		return nil
	}
	ms, err := store.MitigationsTx(ctx, tx, store.MitigationFilter{State: store.MitigationOpen, Device: dev})
	if err != nil || len(ms) == 0 {
		return err
	}
	rel, err := store.ReleaseTx(ctx, tx, r.Target)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a release of this server: not the fix
	}
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	repairs := map[int64]bool{}
	for _, m := range ms {
		if rel.SHA256 == m.Artifact {
			continue // still the revoked artifact (a re-signed release included)
		}
		if rm, err := store.ReleaseTx(ctx, tx, m.Target); err == nil && rm.Module != rel.Module {
			continue // another module's release says nothing about this one
		}
		backup, err := s.backupOfTx(ctx, tx, m.Target)
		if err != nil {
			return err
		}
		if backup != "" && backup == rel.Target {
			continue // the backup keeps the device safe; it is not the fix
		}
		closed, err := store.CloseMitigationTx(ctx, tx, m.ID, store.MitigationClosed, rel.Target, now)
		if err != nil {
			return err
		}
		if closed {
			s.log.Info("mitigation closed", "device", dev, "artifact", m.Artifact, "release", rel.Target, "repair", m.Repair)
			repairs[m.Repair] = true
		}
	}
	return s.closeRepairsTx(ctx, tx, repairs, now)
}

// abandonMitigationsTx abandons a decommissioned device's open
// mitigations (called by the decommission handler).
func (s *Server) abandonMitigationsTx(ctx context.Context, tx *sql.Tx, dev string) error {
	ms, err := store.MitigationsTx(ctx, tx, store.MitigationFilter{State: store.MitigationOpen, Device: dev})
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	repairs := map[int64]bool{}
	for _, m := range ms {
		if _, err := store.CloseMitigationTx(ctx, tx, m.ID, store.MitigationAbandoned, "", now); err != nil {
			return err
		}
		repairs[m.Repair] = true
	}
	return s.closeRepairsTx(ctx, tx, repairs, now)
}

func (s *Server) closeRepairsTx(ctx context.Context, tx *sql.Tx, repairs map[int64]bool, now time.Time) error {
	ids := make([]int64, 0, len(repairs))
	for id := range repairs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		closed, err := store.CloseRepairIfDoneTx(ctx, tx, id, now)
		if err != nil {
			return err
		}
		if closed {
			s.log.Warn("repair request closed: no mitigation open", "repair", id)
			if err := s.queueWebhookTx(ctx, tx, hookClosed, id, now); err != nil {
				return err
			}
			s.kickWebhook()
		}
	}
	return nil
}

// backupOfTx returns the backup the integrator designated for release
// target in the latest image targets ("" when none).
func (s *Server) backupOfTx(ctx context.Context, tx *sql.Tx, target string) (string, error) {
	var data []byte
	err := tx.QueryRowContext(ctx, `SELECT data FROM tuf_meta WHERE repo=? AND role=? ORDER BY version DESC LIMIT 1`,
		repoImage, tufrepo.Targets).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	t, err := tufrepo.Parse[metadata.TargetsType](data)
	if err != nil {
		return "", fmt.Errorf("the stored image targets: %w", err)
	}
	tf, ok := t.Signed.Targets[target]
	if !ok {
		return "", nil
	}
	tf.Path = target
	im, err := tufrepo.ParseImageMeta(tf)
	if err != nil {
		return "", nil // verified when published; an old format names no backup
	}
	return im.Backup, nil
}

// withTimelines fills the mitigations' timelines from the report history.
func (s *Server) withTimelines(ctx context.Context, ms []store.Mitigation) error {
	for i := range ms {
		tl, err := store.TimelineTx(ctx, s.st.DB(), ms[i].DeviceID, ms[i].Opened)
		if err != nil {
			return err
		}
		ms[i].Timeline = tl
	}
	return nil
}

// afterCertificate is called when a certificate is stored: a fix may now
// be certified.
func (s *Server) afterCertificate(sha string) {
	if _, err := hex.DecodeString(sha); err == nil {
		s.kickFix()
	}
}

// afterPublish is called when image targets are published: a fix may now
// be released.
func (s *Server) afterPublish() { s.kickFix() }

// checkMitigationState checks a ?state= of the mitigation views.
func checkMitigationState(v string) error {
	switch v {
	case "", store.MitigationOpen, store.MitigationClosed, store.MitigationAbandoned:
		return nil
	}
	return errorf(http.StatusBadRequest, "state must be one of %s", strings.Join([]string{store.MitigationOpen, store.MitigationClosed, store.MitigationAbandoned}, ", "))
}

// certifiedEvent is what the server reads of a certificate (or passing
// re-inspection) event's data.
type certifiedEvent struct {
	Digest  string `json:"digest"`
	Verdict string `json:"verdict"`
}

// fetchCertificate stores the bundle of a passing certificate or
// re-inspection the certifier's feed announces, when its artifact is
// released here: the bundle is fetched from the certifier and stored
// only if it verifies under the pinned root, exactly as PUT
// /v1/certificates does. A failure is logged; the integrator can still
// PUT the bundle (ztota release --certd).
func (s *Server) fetchCertificate(ctx context.Context, e feedEvent) {
	if s.feed == nil || (e.Kind != "certificate" && e.Kind != "reinspection") {
		return
	}
	var d certifiedEvent
	if len(e.Data) == 0 || json.Unmarshal(e.Data, &d) != nil || d.Verdict != "pass" {
		return
	}
	if len(e.Artifact) != 64 || strings.Trim(e.Artifact, "0123456789abcdef") != "" ||
		len(d.Digest) != len("sha256:")+64 || !strings.HasPrefix(d.Digest, "sha256:") ||
		strings.Trim(d.Digest[len("sha256:"):], "0123456789abcdef") != "" {
		s.log.Warn("certifier certificate event: malformed artifact or digest; not fetched", "event", e.Seq)
		return
	}
	rels, err := store.ReleasesOfTx(ctx, s.st.DB(), e.Artifact)
	if err != nil || len(rels) == 0 {
		return // not released here (the integrator PUTs the bundle when releasing)
	}
	body, err := s.feed.client.Bundle(ctx, d.Digest)
	if err == nil && len(body) > maxCertBundleBody {
		err = fmt.Errorf("bundle larger than %d bytes", maxCertBundleBody)
	}
	if err == nil {
		_, err = s.storeBundle(ctx, e.Artifact, body)
	}
	if err != nil {
		s.log.Warn("certifier certificate event: bundle not stored", "event", e.Seq, "artifact", e.Artifact, "digest", d.Digest, "err", err)
		return
	}
	s.log.Info("certificate stored from the certifier's feed", "event", e.Seq, "artifact", e.Artifact, "digest", d.Digest)
	s.afterCertificate(e.Artifact)
}

// storeBundle verifies a certificate bundle of artifact sha under the
// pinned root against the stored revocation list and stores it (PUT
// /v1/certificates and the feed's certificate events); it returns what
// it stored.
func (s *Server) storeBundle(ctx context.Context, sha string, body []byte) (store.CertBundle, error) {
	var b CertBundle
	if err := decodeJSONBytes(body, maxCertBundleBody, &b); err != nil {
		return store.CertBundle{}, err
	}
	var stored store.CertBundle
	err := s.st.Tx(ctx, func(tx *sql.Tx) error {
		prev, err := storedList(ctx, tx)
		if err != nil {
			return err
		}
		rep, err := s.verifyBundle(b, sha, prev)
		if err != nil {
			return err
		}
		c := rep.Certificate
		stored = store.CertBundle{SHA256: sha, CertDigest: c.Digest, Bundle: body, Issued: c.Result.Issued,
			ValidUntil: c.Result.ValidUntil, Stored: s.cfg.Now()}
		return store.PutCertificateTx(ctx, tx, stored)
	})
	return stored, err
}
