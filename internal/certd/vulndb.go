package certd

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/ztota/ztota/internal/atomicfile"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/osvdb"
	"github.com/ztota/ztota/internal/vulnref"
)

// source is one vulnerability source: a file, a directory or a URL.
type source struct {
	spec  string // as configured
	db    *osvdb.DB
	stamp string // fingerprint of the file or directory, or the URL's ETag
}

// vulnDB is the union of the sources.
type vulnDB struct{ sources []*source }

// ID is the snapshot id results carry: the single source's id, or a
// digest over the sources' ids.
func (v *vulnDB) ID() string {
	if len(v.sources) == 1 {
		return v.sources[0].db.ID()
	}
	ids := make([]string, len(v.sources))
	for i, s := range v.sources {
		ids[i] = s.db.ID()
	}
	sort.Strings(ids)
	return digestOf([]byte(strings.Join(ids, "\n")))
}

// Source names the sources.
func (v *vulnDB) Source() string {
	names := make([]string, len(v.sources))
	for i, s := range v.sources {
		names[i] = filepath.Base(s.db.Source())
	}
	return strings.Join(names, ",")
}

// Match returns the findings of every source, sorted by advisory id and
// package, with their level set from syms, the function tables of the
// artifact's Go binaries by location (see osvdb.MatchAllSymbols).
func (v *vulnDB) Match(cs []vulnref.Component, syms map[string]*vulnref.Symbols) []vulnref.Finding {
	var keys []vulnref.Component
	for _, c := range cs {
		keys = append(keys, matchKeys(c)...)
	}
	var out []vulnref.Finding
	for _, s := range v.sources {
		out = append(out, s.db.MatchAllSymbols(keys, syms)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Package < out[j].Package
	})
	return out
}

// matchKeys returns the identities a component is matched under: itself
// and, for a Debian binary package built from a source package of another
// name or version (its PURL's "upstream" qualifier), that source package,
// since OSV's Debian records name source packages.
func matchKeys(c vulnref.Component) []vulnref.Component {
	out := []vulnref.Component{c}
	if ecoBase(c.Ecosystem) != "Debian" || c.PURL == "" {
		return out
	}
	p, err := packageurl.FromString(c.PURL)
	if err != nil {
		return out
	}
	up := p.Qualifiers.Map()["upstream"]
	if up == "" {
		return out
	}
	name, version, ok := strings.Cut(up, "@")
	if !ok {
		version = c.Version
	}
	if name == "" || (name == c.Name && version == c.Version) {
		return out
	}
	src := c
	src.Name, src.Version = name, version
	return append(out, src)
}

func isURL(spec string) bool {
	return strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://")
}

// stampOf fingerprints a file or directory by names, sizes and times.
func stampOf(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return fmt.Sprintf("%d:%d", st.Size(), st.ModTime().UnixNano()), nil
	}
	h := sha256.New()
	n := 0
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > 1_000_000 {
			return errors.New("too many files")
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d %d\n", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fetchSource reads a source. For URLs it sends the known ETag and
// returns (nil, stamp, nil) when nothing changed.
func (s *Service) fetchSource(ctx context.Context, spec, knownStamp string) (*osvdb.DB, string, error) {
	lim := osvdb.DefaultLimits()
	if !isURL(spec) {
		stamp, err := stampOf(spec)
		if err != nil {
			return nil, "", fmt.Errorf("vulnerability source %s: %w", spec, err)
		}
		if stamp == knownStamp {
			return nil, stamp, nil
		}
		db, err := osvdb.Load(spec, lim)
		if err != nil {
			return nil, "", fmt.Errorf("vulnerability source %s: %w", spec, err)
		}
		return db, stamp, nil
	}
	src, err := parseSourceURL(spec)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.fetch, nil)
	if err != nil {
		return nil, "", err
	}
	if knownStamp != "" {
		req.Header.Set("If-None-Match", knownStamp)
	}
	resp, err := sourceClient(s.cfg.HTTPClient, src).Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("vulnerability source %s: %w", spec, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, knownStamp, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("vulnerability source %s: %s", spec, resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.cfg.DataDir, "tmp"), "osv-*.zip")
	if err != nil {
		return nil, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, lim.MaxArchiveBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("vulnerability source %s: %w", spec, err)
	}
	if n > lim.MaxArchiveBytes {
		return nil, "", fmt.Errorf("vulnerability source %s: larger than %d bytes", spec, lim.MaxArchiveBytes)
	}
	if src.pin != "" {
		if got := hex.EncodeToString(h.Sum(nil)); got != src.pin {
			return nil, "", fmt.Errorf("vulnerability source %s: %w: got %s", spec, ErrSourceDigest, got)
		}
	}
	db, err := osvdb.LoadZip(tmp, n, spec, lim)
	if err != nil {
		return nil, "", fmt.Errorf("vulnerability source %s: %w", spec, err)
	}
	return db, resp.Header.Get("ETag"), nil
}

// sourceState is what the service remembers of a source across restarts.
type sourceState struct {
	ID     string `json:"id"`     // last applied snapshot id
	Stamp  string `json:"stamp"`  // fingerprint of the configured path when last read
	Upload string `json:"upload"` // file under DATA/osv holding an uploaded snapshot that replaced it
}

func sourceKey(i int) string { return fmt.Sprintf("source.%d", i) }

// loadSources loads every configured source at start. A source whose
// content changed while the service was down is applied as an update; when
// the earlier snapshot is not at hand, every certified artifact is
// re-inspected.
func (s *Service) loadSources(ctx context.Context) error {
	if len(s.cfg.OSV) == 0 {
		return errors.New("certd: at least one vulnerability source (--osv) is required")
	}
	s.vdb = &vulnDB{}
	var changed []int
	var prevIDs []string
	for i, spec := range s.cfg.OSV {
		var st sourceState
		if v, err := getMeta(ctx, s.db, sourceKey(i)); err != nil {
			return err
		} else if v != "" {
			if err := json.Unmarshal([]byte(v), &st); err != nil {
				return fmt.Errorf("stored state of source %d: %w", i, err)
			}
		}
		src := &source{spec: spec}
		if st.Upload != "" {
			db, err := osvdb.Load(filepath.Join(s.cfg.DataDir, "osv", st.Upload), osvdb.DefaultLimits())
			if err != nil {
				return fmt.Errorf("uploaded snapshot of source %d: %w", i, err)
			}
			src.db, src.stamp = db, st.Stamp
		}
		db, stamp, err := s.fetchSource(ctx, spec, "")
		if err != nil {
			return err
		}
		switch {
		case src.db == nil:
			src.db, src.stamp = db, stamp
		case stamp != st.Stamp:
			// The configured source changed after an upload replaced it.
			src.db, src.stamp = db, stamp
		}
		s.vdb.sources = append(s.vdb.sources, src)
		if st.ID != "" && st.ID != src.db.ID() {
			changed = append(changed, i)
			prevIDs = append(prevIDs, st.ID)
		}
		if st.ID != src.db.ID() {
			if err := s.recordSnapshot(ctx, i, src, st.Upload); err != nil {
				return err
			}
		}
	}
	if len(changed) > 0 {
		s.logger.Info("vulnerability sources changed while stopped; re-inspecting every certified artifact",
			"sources", changed, "previous", prevIDs)
		return s.reinspect(ctx, nil, "vulnerability database changed while the service was stopped")
	}
	return nil
}

// recordSnapshot logs a newly applied snapshot id and remembers it.
func (s *Service) recordSnapshot(ctx context.Context, i int, src *source, upload string) error {
	now := s.now().UTC()
	st, _ := json.Marshal(sourceState{ID: src.db.ID(), Stamp: src.stamp, Upload: upload})
	entry, _ := json.Marshal(map[string]any{
		"source": src.db.Source(), "id": src.db.ID(), "records": src.db.Len(), "time": now,
	})
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		idx, err := s.log.Append(ctx, tx, "db-snapshot", entry)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO snapshots (source, id, records, loaded, log_index)
			VALUES (?,?,?,?,?)`, src.spec, src.db.ID(), src.db.Len(), unix(now), idx); err != nil {
			return err
		}
		return setMeta(ctx, tx, sourceKey(i), string(st))
	})
	if err == nil {
		s.feed.notify()
	}
	return err
}

// UpdateReport says what one database update did.
type UpdateReport struct {
	Source      string        `json:"source"`
	PreviousID  string        `json:"previous_id"`
	ID          string        `json:"id"`
	Added       int           `json:"added"`
	Modified    int           `json:"modified"`
	Removed     int           `json:"removed"`
	Withdrawn   int           `json:"withdrawn"`
	Rejected    int           `json:"rejected_records"` // malformed records skipped in the new snapshot
	Packages    int           `json:"affected_packages"`
	Reinspected int           `json:"reinspected"`
	Revoked     []string      `json:"revoked"`
	Recertified []string      `json:"recertified"`
	Took        time.Duration `json:"took_ns"`
}

// Poll checks every source once and applies the changed ones.
func (s *Service) Poll(ctx context.Context) ([]UpdateReport, error) {
	var reps []UpdateReport
	for i := range s.cfg.OSV {
		s.mu.Lock()
		src := s.vdb.sources[i]
		spec, stamp := src.spec, src.stamp
		s.mu.Unlock()
		db, newStamp, err := s.fetchSource(ctx, spec, stamp)
		if err != nil {
			return reps, err
		}
		if db == nil {
			continue
		}
		rep, err := s.apply(ctx, i, db, newStamp, "")
		if err != nil {
			return reps, err
		}
		if rep != nil {
			reps = append(reps, *rep)
		}
	}
	return reps, nil
}

// Upload makes an uploaded OSV zip the new content of source i; it stays
// in effect until the configured source itself changes.
func (s *Service) Upload(ctx context.Context, i int, r io.Reader) (*UpdateReport, error) {
	if i < 0 || i >= len(s.cfg.OSV) {
		return nil, inputErrorf("no source %d (the service has %d)", i, len(s.cfg.OSV))
	}
	lim := osvdb.DefaultLimits()
	tmp, err := os.CreateTemp(filepath.Join(s.cfg.DataDir, "tmp"), "upload-*.zip")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(r, lim.MaxArchiveBytes+1))
	if err != nil {
		return nil, inputErrorf("reading the snapshot: %v", err)
	}
	if n > lim.MaxArchiveBytes {
		return nil, inputErrorf("snapshot larger than %d bytes", lim.MaxArchiveBytes)
	}
	db, err := osvdb.LoadZip(tmp, n, "upload", lim)
	if err != nil {
		return nil, inputErrorf("snapshot: %v", err)
	}
	name := strings.TrimPrefix(db.ID(), "sha256:") + ".zip"
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := atomicfile.Rename(tmp.Name(), filepath.Join(s.cfg.DataDir, "osv", name)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	stamp := s.vdb.sources[i].stamp
	s.mu.Unlock()
	return s.apply(ctx, i, db, stamp, name)
}

// apply replaces source i with db: diff, re-inspect what the change can
// affect, revoke what now fails.
func (s *Service) apply(ctx context.Context, i int, db *osvdb.DB, stamp, upload string) (*UpdateReport, error) {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.vdb.sources[i]
	old := src.db
	if old.ID() == db.ID() {
		src.stamp = stamp
		st, _ := json.Marshal(sourceState{ID: db.ID(), Stamp: stamp, Upload: upload})
		return nil, inTx(ctx, s.db, func(tx *sql.Tx) error { return setMeta(ctx, tx, sourceKey(i), string(st)) })
	}
	ch := osvdb.Diff(old, db)
	src.db, src.stamp = db, stamp
	if err := s.recordSnapshot(ctx, i, src, upload); err != nil {
		src.db = old
		return nil, err
	}
	rep := &UpdateReport{
		Source: src.spec, PreviousID: old.ID(), ID: db.ID(), Added: len(ch.Added), Modified: len(ch.Modified),
		Removed: len(ch.Removed), Withdrawn: len(ch.Withdrawn), Packages: len(ch.Packages),
		Rejected: len(db.Rejected()),
	}
	for _, r := range db.Rejected() {
		s.logger.Warn("malformed OSV record skipped", "source", src.spec, "record", r.Error())
	}
	arts, err := s.affectedArtifacts(ctx, ch.Packages)
	if err != nil {
		return nil, err
	}
	res, err := s.reinspectLocked(ctx, arts, fmt.Sprintf("vulnerability database %s → %s", short(old.ID()), short(db.ID())), false)
	if err != nil {
		return nil, err
	}
	rep.Reinspected, rep.Revoked, rep.Recertified = res.reinspected, res.revoked, res.recertified
	rep.Took = time.Since(start)
	s.logger.Info("vulnerability database updated", "source", src.spec, "id", db.ID(),
		"added", rep.Added, "modified", rep.Modified, "removed", rep.Removed, "withdrawn", rep.Withdrawn,
		"packages", rep.Packages, "reinspected", rep.Reinspected, "revoked", len(rep.Revoked))
	return rep, nil
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// affectedArtifacts returns the certified or revoked artifacts whose
// inventory holds one of the packages, through the component index.
func (s *Service) affectedArtifacts(ctx context.Context, pkgs []vulnref.Key) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, k := range pkgs {
		shas, err := queryStrings(ctx, s.db, `SELECT c.artifact FROM components c JOIN artifacts a ON a.sha256 = c.artifact
			WHERE c.eco_base = ? AND c.name = ? AND a.state IN ('certified', 'revoked')`, ecoBase(k.Ecosystem), k.Name)
		if err != nil {
			return nil, err
		}
		for _, sha := range shas {
			if !seen[sha] {
				seen[sha] = true
				out = append(out, sha)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

type reinspection struct {
	reinspected          int
	revoked, recertified []string
}

// reinspect re-inspects the given artifacts (nil: every certified or
// revoked artifact).
func (s *Service) reinspect(ctx context.Context, arts []string, why string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.reinspectLocked(ctx, arts, why, false)
	return err
}

// reinspectLocked re-evaluates each artifact's stored inventory against
// the current database, signs and logs a re-inspection result naming the
// earlier certificate, revokes certificates that now fail, issues a new
// certificate to a revoked artifact that passes again (and, with reissue,
// to a certified one that still passes), and publishes one new revocation
// list if anything was revoked. A rejected artifact in arts (a new
// verifier) is certified if it now passes. s.mu is held.
func (s *Service) reinspectLocked(ctx context.Context, arts []string, why string, reissue bool) (reinspection, error) {
	var out reinspection
	if arts == nil {
		var err error
		arts, err = queryStrings(ctx, s.db, `SELECT sha256 FROM artifacts WHERE state IN ('certified','revoked') ORDER BY sha256`)
		if err != nil {
			return out, err
		}
	}
	now := s.now().UTC()
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		for _, sha := range arts {
			a, err := getArtifact(ctx, tx, sha)
			if err != nil {
				return err
			}
			var syms map[string]*vulnref.Symbols
			haveSyms := false
			if a.VerifierVersion != s.verifier {
				if syms, err = s.reextract(a); err != nil {
					// Keep the stored inventory; the next start retries.
					s.logger.Warn("re-inspecting with the stored inventory", "artifact", sha, "err", err)
				} else if err := putArtifact(ctx, tx, a); err != nil {
					return err
				} else {
					haveSyms = true
				}
			}
			if a.State == StateRejected {
				// Only a new verifier re-inspects rejected artifacts: one
				// that now passes (a finding the new verifier shows to be
				// absent code) is certified; one that still fails keeps its
				// rejection.
				verdict, findings := s.evaluate(a, syms, haveSyms)
				out.reinspected++
				if verdict != attest.VerdictPass {
					continue
				}
				r, err := s.issue(ctx, tx, a, attest.KindCertificate, verdict, "", findings, now)
				if err != nil {
					return err
				}
				if err := setArtifactState(ctx, tx, sha, StateCertified, r.Digest, now); err != nil {
					return err
				}
				out.recertified = append(out.recertified, sha)
				continue
			}
			prev, err := s.lastCertificate(ctx, tx, sha)
			if err != nil {
				return err
			}
			verdict, findings := s.evaluate(a, syms, haveSyms)
			if _, err := s.issue(ctx, tx, a, attest.KindReinspection, verdict, prev, findings, now); err != nil {
				return err
			}
			out.reinspected++
			switch {
			case a.State == StateCertified && verdict != attest.VerdictPass:
				adv := blockingIDs(findings)
				if err := s.revoke(ctx, tx, a, prev, adv, why, now); err != nil {
					return err
				}
				out.revoked = append(out.revoked, sha)
			case verdict == attest.VerdictPass && (a.State == StateRevoked || a.State == StateCertified && reissue):
				r, err := s.issue(ctx, tx, a, attest.KindCertificate, verdict, prev, findings, now)
				if err != nil {
					return err
				}
				if err := setArtifactState(ctx, tx, sha, StateCertified, r.Digest, now); err != nil {
					return err
				}
				out.recertified = append(out.recertified, sha)
			}
		}
		if len(out.revoked) > 0 {
			return s.publishRevocations(ctx, tx, now)
		}
		return nil
	})
	if err != nil {
		return reinspection{}, err
	}
	s.feed.notify()
	return out, nil
}

// lastCertificate is the digest of the artifact's newest certificate.
func (s *Service) lastCertificate(ctx context.Context, q queryer, sha string) (string, error) {
	var d string
	err := q.QueryRowContext(ctx, `SELECT digest FROM results WHERE artifact = ? AND kind = ? ORDER BY seq DESC LIMIT 1`,
		sha, attest.KindCertificate).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return d, err
}

// reextract takes the artifact's inventory again from its stored bytes
// (a new verifier version) and returns its Go function tables.
func (s *Service) reextract(a *artifactRow) (map[string]*vulnref.Symbols, error) {
	inv, err := inventoryFromFile(s.artifactPath(a.SHA256), s.cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("re-inspecting %s from its stored bytes: %w", a.SHA256, err)
	}
	a.Kind, a.Components, a.Notes, a.VerifierVersion = inv.Kind, inv.Components, inv.Notes, s.verifier
	return inv.Symbols, nil
}

// checkVerifierVersion re-inspects everything when the verifier changed.
func (s *Service) checkVerifierVersion(ctx context.Context) error {
	v, err := getMeta(ctx, s.db, "verifier_version")
	if err != nil {
		return err
	}
	if v == s.verifier {
		return nil
	}
	if v != "" {
		s.logger.Info("verifier version changed; re-inspecting every certified, revoked and rejected artifact", "from", v, "to", s.verifier)
		arts, err := queryStrings(ctx, s.db, `SELECT sha256 FROM artifacts WHERE state IN ('certified','revoked','rejected') ORDER BY sha256`)
		if err != nil {
			return err
		}
		if len(arts) > 0 {
			if err := s.reinspect(ctx, arts, "verifier "+v+" → "+s.verifier); err != nil {
				return err
			}
		}
	}
	return inTx(ctx, s.db, func(tx *sql.Tx) error { return setMeta(ctx, tx, "verifier_version", s.verifier) })
}

// Watch polls the sources every WatchInterval until ctx ends, and keeps
// the revocation list fresh.
func (s *Service) Watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Poll(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("vulnerability source check failed; keeping the current snapshot", "err", err)
		}
		if err := s.refreshRevocations(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("re-signing the revocation list failed", "err", err)
		}
		if _, err := s.renewExpiring(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("renewing certificates failed", "err", err)
		}
	}
}

// reissueUnverifiable re-inspects, and re-certifies when they still pass,
// the certified artifacts whose current certificate no longer verifies
// under the current root (the certify key was rotated): devices that
// follow the root would otherwise refuse them.
//
// The check runs only when the root version differs from the one the
// service last started with, so a plain restart verifies nothing.
func (s *Service) reissueUnverifiable(ctx context.Context) error {
	version := strconv.FormatInt(s.root.Version(), 10)
	if v, err := getMeta(ctx, s.db, "root_version"); err != nil || v == version {
		return err
	}
	if err := s.reissueStale(ctx); err != nil {
		return err
	}
	return inTx(ctx, s.db, func(tx *sql.Tx) error { return setMeta(ctx, tx, "root_version", version) })
}

func (s *Service) reissueStale(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT a.sha256, r.envelope, r.issued FROM artifacts a
		JOIN results r ON r.digest = a.current WHERE a.state = 'certified' ORDER BY a.sha256`)
	if err != nil {
		return err
	}
	var stale []string
	for rows.Next() {
		var sha string
		var env []byte
		var issued int64
		if err := rows.Scan(&sha, &env, &issued); err != nil {
			rows.Close()
			return err
		}
		if _, err := attest.Verify(s.root, env, time.Unix(issued, 0)); err != nil && !errors.Is(err, attest.ErrExpired) {
			stale = append(stale, sha)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(stale) == 0 {
		return nil
	}
	s.logger.Info("re-certifying artifacts whose certificates the current root no longer verifies", "count", len(stale))
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.reinspectLocked(ctx, stale, fmt.Sprintf("certifier root version %d", s.root.Version()), true)
	return err
}

// renewExpiring re-inspects the certified artifacts whose certificate has
// less than a quarter of the policy's validity left and, when they still
// pass, issues fresh certificates, so clean software does not lapse.
func (s *Service) renewExpiring(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	horizon := now.Add(time.Duration(s.policy.ValidFor) / 4)
	arts, err := queryStrings(ctx, s.db, `SELECT a.sha256 FROM artifacts a JOIN results r ON r.digest = a.current
		WHERE a.state = 'certified' AND r.valid_until < ? ORDER BY a.sha256`, unix(horizon))
	if err != nil || len(arts) == 0 {
		return 0, err
	}
	res, err := s.reinspectLocked(ctx, arts, "certificate renewal", true)
	if err != nil {
		return 0, err
	}
	s.logger.Info("renewed expiring certificates", "renewed", len(res.recertified), "revoked", len(res.revoked))
	return len(res.recertified), nil
}
