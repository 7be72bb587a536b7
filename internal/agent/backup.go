package agent

// Switch to the pre-designated backup (issue 8): when the certifier's
// signed revocation list revokes the artifact a module runs and the
// running release's integrator-signed image metadata names a backup
// (ImageMeta.Backup), the agent installs that backup through the same A/B
// path as any update (download, verify, stage, boot-once, health check,
// commit or roll back), provided the backup is in the verified image
// targets, is of the same module, supports this hardware, is not revoked
// in the list, and has a certificate that verifies. Only because it was
// designated may it have a lower release counter than the floor; the
// floor stays where it was, so the fix (a higher counter than the revoked
// release) still installs. Anything else makes the module degraded
// instead, the report saying why the backup was not used.
//
// Nothing but the verified list triggers a switch: a director that
// assigns the backup target on its own is refused by the floor.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/tufrepo"
)

// trustedImageTargets reads the image repository's targets the last TUF
// refresh verified.
func (a *Agent) trustedImageTargets() (map[string]*metadata.TargetFiles, error) {
	data, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "tuf", "image", "targets.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the trusted image targets: %w", err)
	}
	md, err := tufrepo.Parse[metadata.TargetsType](data)
	if err != nil {
		return nil, fmt.Errorf("the trusted image targets: %w", err)
	}
	return md.Signed.Targets, nil
}

// findBackup returns the usable backup of m's revoked running release
// cur, or why there is none, and whether that reason may pass (the
// certificate or list could not be fetched now: the switch is tried
// again later).
func (a *Agent) findBackup(ctx context.Context, m *module, cur slot.Meta, l *attest.RevocationList) (Candidate, string, bool) {
	c, why := a.findBackupOnce(ctx, m, cur, l)
	if why == "" || c.SHA256 == "" {
		return c, why, false
	}
	return Candidate{}, why, true // only a passing certificate check leaves the candidate set
}

func (a *Agent) findBackupOnce(ctx context.Context, m *module, cur slot.Meta, l *attest.RevocationList) (Candidate, string) {
	targets, err := a.trustedImageTargets()
	if err != nil {
		return Candidate{}, err.Error()
	}
	tf, ok := targets[cur.Target]
	if !ok || hex.EncodeToString(tf.Hashes["sha256"]) != cur.SHA256 {
		return Candidate{}, fmt.Sprintf("the running %s is not in the signed image targets with its digest", cur.Target)
	}
	im, err := tufrepo.ParseImageMeta(tf)
	if err != nil {
		return Candidate{}, fmt.Sprintf("the running %s: %v", cur.Target, err)
	}
	if im.Backup == "" {
		return Candidate{}, fmt.Sprintf("the running %s names no backup", cur.Target)
	}
	btf, ok := targets[im.Backup]
	if !ok {
		return Candidate{}, fmt.Sprintf("its backup %s is not in the signed image targets", im.Backup)
	}
	bim, err := tufrepo.ParseImageMeta(btf)
	if err != nil {
		return Candidate{}, fmt.Sprintf("its backup %s: %v", im.Backup, err)
	}
	sha := hex.EncodeToString(btf.Hashes["sha256"])
	switch {
	case bim.Module != m.name():
		return Candidate{}, fmt.Sprintf("its backup %s is for module %s, not %s", im.Backup, bim.Module, m.name())
	case !bim.Supports(a.cfg.HardwareID):
		return Candidate{}, fmt.Sprintf("its backup %s is for hardware %v, this device is %s", im.Backup, bim.HardwareIDs, a.cfg.HardwareID)
	case len(sha) != 64:
		return Candidate{}, fmt.Sprintf("its backup %s has no sha256", im.Backup)
	case sha == cur.SHA256:
		return Candidate{}, fmt.Sprintf("its backup %s is the revoked artifact", im.Backup)
	case btf.Length > a.cfg.MaxArtifact:
		return Candidate{}, fmt.Sprintf("its backup %s is %d bytes, above this device's limit of %d", im.Backup, btf.Length, a.cfg.MaxArtifact)
	}
	if r, revoked := l.Lookup(sha, ""); revoked {
		return Candidate{}, fmt.Sprintf("its backup %s is revoked too (%s)", im.Backup, strings.Join(r.Advisories, " "))
	}
	a.mu.Lock()
	why, refused := a.ms(m).Refused[sha]
	a.mu.Unlock()
	if refused {
		return Candidate{}, fmt.Sprintf("its backup %s was refused before: %s", im.Backup, why.Why)
	}
	info := *btf
	info.Path = im.Backup
	c := Candidate{Path: im.Backup, Info: &info, SHA256: sha, Image: bim}
	if err := a.checkCertificate(ctx, c); err != nil {
		why := fmt.Sprintf("its backup %s: %v", im.Backup, err)
		if errors.Is(err, ErrRefused) || certFinal(err) {
			return Candidate{}, why
		}
		return c, why // passing: tried again later
	}
	return c, ""
}

// backupLater records that m's backup switch failed for a passing reason
// and is tried again after a bounded back-off (retryBackup).
func (a *Agent) backupLater(m *module) {
	m.backupTries++
	m.backupRetryAt = time.Now().Add(backoff(m.backupTries))
}

// retryBackup tries again, once its back-off passed, the switch of a
// module that was degraded because its backup could not be used for a
// passing reason; l is the newest verified list and r its revocation of
// the running artifact cur.
func (a *Agent) retryBackup(ctx context.Context, m *module, cur slot.Meta, l *attest.RevocationList, r *attest.Revocation) {
	if m.backupRetryAt.IsZero() || time.Now().Before(m.backupRetryAt) || !a.degradedFor(m, cur.SHA256) {
		return
	}
	c, why, passing := a.findBackup(ctx, m, cur, l)
	if why != "" {
		if passing {
			a.backupLater(m)
		} else {
			m.backupRetryAt, m.backupTries = time.Time{}, 0
		}
		a.log.Warn("the designated backup is still not usable", "module", m.name(), "why", why, "again", passing)
		return
	}
	m.backupRetryAt, m.backupTries = time.Time{}, 0
	a.switchToBackup(ctx, m, cur, c, l, r)
}

// switchToBackup installs the backup c of m's revoked running release cur
// and reports "switching-to-backup", then "on-backup" once it is
// committed; if it is not (the install failed or rolled back), the module
// is degraded.
func (a *Agent) switchToBackup(ctx context.Context, m *module, cur slot.Meta, c Candidate, l *attest.RevocationList, r *attest.Revocation) {
	adv := strings.Join(r.Advisories, " ")
	mit := &mitigation{Mode: ModeBackup, SHA256: cur.SHA256, Backup: c.SHA256, Advisories: append([]string(nil), r.Advisories...),
		List: l.Version, Since: time.Now().UTC()}
	if err := a.setMitigation(m, mit); err != nil {
		a.degrade(ctx, m, cur, l, r, "backup not used: saving the mode: "+err.Error())
		return
	}
	a.log.Warn("switching to the backup", "module", m.name(), "revoked", cur.Target, "backup", c.Path)
	a.mreport(ctx, m, report.StateSwitchingToBackup, "", cur.Version, 0,
		fmt.Sprintf("switching to backup: %s: the running %s (sha256 %s) is revoked by revocation list version %d; installing its designated backup %s (version %s, sha256 %s)",
			adv, cur.Target, cur.SHA256, l.Version, c.Path, c.Image.Version, c.SHA256))
	ierr := a.install(ctx, m, c, false)
	st, err := m.slots.State(ctx)
	if err == nil && st.Pending == "" && st.Active != "" && st.Slots[st.Active].SHA256 == c.SHA256 {
		a.mreport(ctx, m, report.StateOnBackup, "", c.Image.Version, 0,
			fmt.Sprintf("on backup: %s: %s (version %s, sha256 %s) runs instead of the revoked %s (sha256 %s)",
				adv, c.Path, c.Image.Version, c.SHA256, cur.Target, cur.SHA256))
		return
	}
	why := "backup not used: its install did not commit"
	if ierr != nil {
		why += ": " + ierr.Error()
	} else if err != nil {
		why += ": " + err.Error()
	} else {
		a.mu.Lock()
		if rf, ok := a.ms(m).Refused[c.SHA256]; ok {
			why += ": " + rf.Why
		}
		a.mu.Unlock()
	}
	// The module runs the revoked artifact again (confined: the mode
	// names it); degrade records it. A failure that may pass (the
	// network, the disk) leaves the switch to be tried again.
	if ierr != nil && classify(ierr) == classTransient {
		a.backupLater(m)
		why += " (tried again later)"
	}
	a.setMitigation(m, nil)
	a.degrade(ctx, m, cur, l, r, why)
}
