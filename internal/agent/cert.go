package agent

// Certification enforced on the device (config certifier_root). Before a
// target is downloaded the agent fetches, with signed device requests,
// the certifier's bundle for the target's sha256 (from the signed TUF
// metadata) and the newest revocation list from the OTA server, which
// only mirrors them:
//
//	GET /v1/devices/{device}/certificates/{sha256}   bundle (envelope, kind, receipt)
//	GET /v1/devices/{device}/revocations             signed list; ETag = version, 304
//
// and verifies them with certverify under the pinned certifier root: a
// passing certificate for exactly that digest, a log receipt under the
// root's pinned origin whose checkpoint is consistent with the one the
// device recorded, and a revocation list that is not older than the
// recorded one, not expired, drops no revocation and does not revoke the
// artifact. What verified is recorded in certstate.json (verifystate:
// atomic, never goes back).
//
// A revocation or a rejection signed by the certifier is a final verdict
// (the target is refused for good, reported "refused" naming the
// advisories). Everything else is transient (retried with back-off,
// reported "failed" once it persists): no certificate at the server yet,
// the network, a stale list. A forged or replayed list, a bundle for
// another digest, without a receipt or with an inconsistent checkpoint is
// an attack by the path or the server: the next answer may be honest, so
// it is transient too, but reported "failed" at once, naming it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/boundedfile"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/translog"
	"github.com/ztota/ztota/internal/verifystate"
)

// certStateFile is the verifier state in the data directory.
const certStateFile = "certstate.json"

// Errors of the certification check a caller may tell apart.
var (
	// ErrNoCertificate: the server holds no certificate bundle for the
	// target (yet): transient.
	ErrNoCertificate = errors.New("no certificate for the target at the server")
	// ErrStaleRevocations: the device has no revocation list that is
	// still valid (none fetched, or the newest one expired).
	ErrStaleRevocations = errors.New("revocation list stale")
	// ErrCertUnavailable: the certificate or the list could not be
	// fetched (network, server error): transient.
	ErrCertUnavailable = errors.New("certification data unavailable")
	// ErrBadBundle: the server's bundle is not a well-formed bundle.
	ErrBadBundle = errors.New("malformed certificate bundle")
)

// maxBundle bounds a certificate bundle (an envelope and a receipt).
const maxBundle = attest.MaxEnvelopeSize + 64<<10

// certBundle is the wire format of a certificate bundle (server.CertBundle,
// 'ztota cert submit --out').
type certBundle struct {
	Envelope json.RawMessage   `json:"envelope"`
	Kind     string            `json:"kind"`
	Receipt  *translog.Receipt `json:"receipt"`
}

// loadCertRoot reads the pinned certifier root, or logs once that
// certification is not enforced.
func (a *Agent) loadCertRoot() error {
	if a.cfg.CertifierRoot == "" {
		a.log.Warn("certification is not enforced: no certifier_root in the agent configuration; targets are installed on the TUF metadata alone")
		return nil
	}
	data, err := boundedfile.Read(a.cfg.CertifierRoot, 1<<20)
	if err != nil {
		return fmt.Errorf("certifier_root: %w", err)
	}
	r, err := certroot.Trust(data)
	if err != nil {
		return fmt.Errorf("certifier_root %s: %w", a.cfg.CertifierRoot, err)
	}
	if _, err := r.PinnedLogVerifierKey(); err != nil {
		return fmt.Errorf("certifier_root %s: %w", a.cfg.CertifierRoot, err)
	}
	a.certRoot = r
	return nil
}

func (a *Agent) certStatePath() string { return filepath.Join(a.cfg.DataDir, certStateFile) }

// devGet is a signed device GET of the server's path, with a bounded body.
func (a *Agent) devGet(ctx context.Context, path string, max int64, hdr map[string]string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.server()+"/v1/devices/"+a.cfg.DeviceID+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.meta.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return 0, nil, nil, err
	}
	if int64(len(body)) > max {
		return 0, nil, nil, fmt.Errorf("the answer to %s is larger than %d bytes", path, max)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// fetchRevocations fetches the newest revocation list: nil (and no error)
// when the server answers that the recorded version is still the newest.
func (a *Agent) fetchRevocations(ctx context.Context) ([]byte, error) {
	hdr := map[string]string{}
	if s, err := verifystate.Load(a.certStatePath()); err == nil && s.Revocations != nil {
		hdr["If-None-Match"] = `"` + strconv.FormatInt(s.Revocations.Version, 10) + `"`
	}
	code, _, body, err := a.devGet(ctx, "/revocations", attest.MaxRevocationsSize, hdr)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: fetching the revocation list: %v", ErrCertUnavailable, err)
	case code == http.StatusNotModified:
		return nil, nil
	case code == http.StatusOK:
		return body, nil
	case code == http.StatusNotFound:
		return nil, fmt.Errorf("%w: the server has no revocation list", ErrStaleRevocations)
	}
	return nil, fmt.Errorf("%w: fetching the revocation list: %d %s: %s", ErrCertUnavailable, code, http.StatusText(code),
		report.Clean(strings.TrimSpace(string(body)), 256, false))
}

// fetchBundle fetches and decodes the certificate bundle of sha.
func (a *Agent) fetchBundle(ctx context.Context, sha string) (*certBundle, error) {
	code, _, body, err := a.devGet(ctx, "/certificates/"+sha, maxBundle, nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: fetching the certificate of %s: %v", ErrCertUnavailable, sha, err)
	case code == http.StatusNotFound:
		return nil, fmt.Errorf("%w: artifact %s", ErrNoCertificate, sha)
	case code != http.StatusOK:
		return nil, fmt.Errorf("%w: fetching the certificate of %s: %d %s", ErrCertUnavailable, sha, code, http.StatusText(code))
	}
	var b certBundle
	if err := strictjson.Decode(body, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	if len(b.Envelope) == 0 {
		return nil, fmt.Errorf("%w: no envelope", ErrBadBundle)
	}
	return &b, nil
}

// prover fetches consistency proofs from certifier_log_url, if set, else
// from the OTA server's mirror of the certifier's log (a signed device
// request; a server that follows no certifier answers 404 and only
// receipts of the recorded tree size pass). Either way the proof is
// checked against the device's own checkpoints: the source is not trusted.
func (a *Agent) prover(ctx context.Context) certverify.ConsistencyProver {
	if a.certRoot == nil {
		return nil
	}
	base, hc := a.cfg.CertifierLogURL, a.plain
	if base == "" {
		base, hc = a.server()+"/v1/devices/"+a.cfg.DeviceID+"/log", a.meta
	}
	return func(oldSize, newSize int64) (tlog.TreeProof, error) {
		key, err := a.certRoot.PinnedLogVerifierKey()
		if err != nil {
			return nil, err
		}
		v, err := note.NewVerifier(key)
		if err != nil {
			return nil, err
		}
		c := &translog.Client{BaseURL: base, HTTP: hc, Verifier: v, Timeout: time.Duration(a.cfg.HTTPTimeout)}
		return c.ConsistencyProof(ctx, oldSize, newSize)
	}
}

// certAttack reports whether a certification error shows the server or
// the path lying (forged, replayed, for another artifact, unlogged,
// inconsistent with the log seen before): reported at once.
func certAttack(err error) bool {
	return errors.Is(err, attest.ErrRollback) || errors.Is(err, attest.ErrForgotten) || errors.Is(err, attest.ErrConflict) ||
		errors.Is(err, attest.ErrSignature) || errors.Is(err, attest.ErrMalformed) || errors.Is(err, attest.ErrWrongType) ||
		errors.Is(err, attest.ErrTooLarge) || errors.Is(err, certverify.ErrWrongSubject) || errors.Is(err, certverify.ErrNotLogged) ||
		errors.Is(err, certverify.ErrLogInconsistent) || errors.Is(err, ErrBadBundle) || errors.Is(err, verifystate.ErrBackwards)
}

// certFinal reports whether a certification error is the certifier's
// signed verdict on the artifact: revoked, or not a passing certificate.
func certFinal(err error) bool {
	return errors.Is(err, certverify.ErrRevoked) || errors.Is(err, certverify.ErrNotCertified)
}

// checkCertificate is the install gate: nil when certification is not
// enforced or c's artifact is certified and not revoked in a fresh list.
// A final verdict wraps ErrRefused.
func (a *Agent) checkCertificate(ctx context.Context, c Candidate) error {
	if a.certRoot == nil {
		return nil
	}
	list, err := a.fetchRevocations(ctx)
	if err != nil && !errors.Is(err, ErrStaleRevocations) {
		return err
	}
	b, err := a.fetchBundle(ctx, c.SHA256)
	if err != nil {
		return err
	}
	now := time.Now()
	var verr error
	err = verifystate.Update(a.certStatePath(), func(s *verifystate.State) error {
		o := certverify.Options{Root: a.certRoot, Now: now, ArtifactSHA256: c.SHA256, Receipt: b.Receipt, Kind: b.Kind,
			RequireReceipt: true, Prover: a.prover(ctx), Revocations: list, RequireRevocations: true}
		s.Apply(&o)
		rep, err := certverify.Verify(b.Envelope, o)
		if errors.Is(err, certverify.ErrNotCertified) && rep != nil && rep.Certificate != nil {
			err = fmt.Errorf("%w; findings: %s", err, findingIDs(rep.Certificate.Result))
		}
		if aerr := s.Advance(rep); aerr != nil && err == nil {
			err = aerr
		}
		if err == nil && (s.Revocations == nil || now.After(s.Revocations.Expires)) {
			err = a.staleErr(s.Revocations)
		}
		verr = err
		return nil // what verified is recorded, whatever failed after it
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCertUnavailable, err)
	}
	if verr != nil {
		if certFinal(verr) {
			return fmt.Errorf("%w: certification: %w", ErrRefused, verr)
		}
		return fmt.Errorf("certification: %w", verr)
	}
	return nil
}

func (a *Agent) staleErr(l *attest.RevocationList) error {
	if l == nil {
		return fmt.Errorf("%w: no revocation list has been received", ErrStaleRevocations)
	}
	return fmt.Errorf("%w: the newest list (version %d) expired %s", ErrStaleRevocations, l.Version, l.Expires.UTC().Format(time.RFC3339))
}

// certAttempts is how many failed attempts a transient certification
// error stands for: an attack is reported at once.
func certAttempts(err error) int {
	if certAttack(err) {
		return failedAfter
	}
	return 1
}

// CheckRevocations fetches the revocation list, records it if it is newer
// and valid, and checks the running artifact against the newest list.
// It is run every revocations_interval and at every full refresh. A list
// that cannot be refreshed past its expiry is reported "failed" once
// (policy: keep running); a forged or replayed list is reported once.
func (a *Agent) CheckRevocations(ctx context.Context) error {
	if a.certRoot == nil {
		return nil
	}
	body, ferr := a.fetchRevocations(ctx)
	now := time.Now()
	var newest *attest.RevocationList
	var verr error
	err := verifystate.Update(a.certStatePath(), func(s *verifystate.State) error {
		if body != nil {
			l, err := attest.VerifyRevocations(a.certRoot, body, s.Revocations, now)
			if err != nil {
				verr = fmt.Errorf("revocation list refused: %w", err)
			} else if aerr := s.Advance(&certverify.Report{Revocations: l}); aerr != nil {
				verr = aerr
			}
		}
		newest = s.Revocations
		return nil
	})
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(verr, attest.ErrExpired) {
		// An expired list is a stale one: reported as such below.
		ferr, verr = verr, nil
	}
	if verr != nil {
		a.reportList(ctx, verr)
	}
	if newest == nil || now.After(newest.Expires) {
		serr := a.staleErr(newest)
		if ferr != nil {
			serr = fmt.Errorf("%w (%v)", serr, ferr)
		}
		if !a.staleReported {
			a.staleReported = true
			a.report(ctx, report.StateFailed, "", "", 0, serr.Error()+"; policy: "+a.cfg.stalePolicy().Policy+" (after a grace of "+
				time.Duration(a.cfg.stalePolicy().Grace).String()+")")
		}
		a.applyStalePolicy(ctx, newest, now)
		if err := a.checkRunning(ctx, newest); err != nil {
			return err
		}
		return serr
	}
	a.staleReported = false
	a.listStaleReported = false
	if verr == nil {
		a.lastListErr = ""
	}
	wasStale := a.clearStale()
	if err := a.checkRunning(ctx, newest); err != nil {
		return err
	}
	if wasStale {
		a.freshAgain(ctx)
	}
	return errors.Join(verr, ferr)
}

// reportList reports a refused list once (until another error or a good
// list).
func (a *Agent) reportList(ctx context.Context, err error) {
	if a.lastListErr == err.Error() {
		return
	}
	a.lastListErr = err.Error()
	a.report(ctx, report.StateFailed, "", "", 0, err.Error())
}

// checkRunning checks every module's committed artifact against l and
// calls runningRevoked once per module, artifact and list version that
// revokes it.
func (a *Agent) checkRunning(ctx context.Context, l *attest.RevocationList) error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, m := range a.mods {
		if err := a.checkRunningModule(ctx, m, l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) checkRunningModule(ctx context.Context, m *module, l *attest.RevocationList) error {
	st, err := m.slots.State(ctx)
	if err != nil {
		return err
	}
	cur, ok := st.Slots[st.Active]
	if !ok || st.Active == "" {
		return nil
	}
	r, revoked := l.Lookup(cur.SHA256, "")
	if !revoked {
		return nil
	}
	key := cur.SHA256 + " " + strconv.FormatInt(l.Version, 10)
	if m.revokedSeen == key {
		a.retryBackup(ctx, m, cur, l, r)
		return nil
	}
	m.revokedSeen = key
	a.runningRevoked(ctx, m, cur, l, r)
	return nil
}

// runningRevoked is the mitigation: the certifier's signed list revokes
// the artifact module m runs. It reports "revocation-seen" (no target:
// the server moves deployments only on reports that name a target, so
// this report does not count against a finished deployment), refuses the
// artifact for good (the director may keep assigning it until the fix is
// deployed), then switches to the release's pre-designated backup if it
// is usable (backup.go), else restarts the module under its degraded
// profile (degrade.go).
func (a *Agent) runningRevoked(ctx context.Context, m *module, cur slot.Meta, l *attest.RevocationList, r *attest.Revocation) {
	mit := a.mitigationOf(m)
	if mit != nil && mit.Mode == ModeDegraded && mit.SHA256 == cur.SHA256 {
		// Reported when it was degraded (before a restart, say). Whether
		// a designated backup has become usable is checked once more
		// (retryBackup: a passing failure may have degraded it).
		if m.backupRetryAt.IsZero() {
			m.backupRetryAt = time.Now()
		}
		a.retryBackup(ctx, m, cur, l, r)
		return
	}
	detail := fmt.Sprintf("revoked: %s: the running %s (sha256 %s) is revoked by revocation list version %d on %s (%s); mitigation needed",
		strings.Join(r.Advisories, " "), cur.Target, cur.SHA256, l.Version, r.Time.UTC().Format(time.RFC3339), r.Reason)
	a.log.Error("the running artifact is revoked", "module", m.name(), "target", cur.Target, "advisories", r.Advisories, "list", l.Version)
	mode, _ := a.modeOf(m)
	a.reportX(ctx, reportExtra{module: m.name(), mode: mode, advisories: r.Advisories}, report.StateRevocationSeen, "", cur.Version, 0, detail)
	a.markRefused(m, cur.SHA256, fmt.Sprintf("revoked: %s (revocation list version %d)", strings.Join(r.Advisories, " "), l.Version))
	if mit != nil && mit.Mode == ModeBackup && mit.Backup == cur.SHA256 {
		a.degrade(ctx, m, cur, l, r, "backup not used: the backup itself is revoked")
		return
	}
	c, why, passing := a.findBackup(ctx, m, cur, l)
	if why != "" {
		if passing {
			a.backupLater(m)
			why += " (tried again later)"
		}
		a.degrade(ctx, m, cur, l, r, "backup not used: "+why)
		return
	}
	a.switchToBackup(ctx, m, cur, c, l, r)
}

// revocationsDue says whether the periodic list check is due, or a
// module's backup switch is to be tried again (retryBackup).
func (a *Agent) revocationsDue() bool {
	if a.certRoot == nil {
		return false
	}
	for _, m := range a.mods {
		if !m.backupRetryAt.IsZero() && !time.Now().Before(m.backupRetryAt) {
			return true
		}
	}
	return time.Since(a.lastList) >= time.Duration(a.cfg.RevocationsInterval)
}

// findingIDs names a rejection's findings (the blocking ones, or all).
func findingIDs(r attest.Result) string {
	var all, blocking []string
	for _, f := range r.Findings {
		all = append(all, f.ID)
		if f.Blocking {
			blocking = append(blocking, f.ID)
		}
	}
	if len(blocking) > 0 {
		all = blocking
	}
	if len(all) == 0 {
		return "none listed"
	}
	if len(all) > 20 {
		all = append(all[:20], fmt.Sprintf("and %d more", len(all)-20))
	}
	return strings.Join(all, " ")
}
