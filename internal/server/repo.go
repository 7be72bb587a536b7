package server

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Repository names in the store.
const (
	repoImage    = "image"
	repoDirector = "director" // shared director root
)

func directorRepo(device string) string { return "director/" + device }

// repoDevice returns the device whose director repository repo is, or ""
// for the image repository and the shared director root.
func repoDevice(repo string) string {
	d, _ := strings.CutPrefix(repo, "director/")
	if d == repo {
		return ""
	}
	return d
}

type onlineKeys = keyset.Online

// metaCache keeps the latest timestamp of each repository in memory, so a
// check-in that finds nothing new costs no database read.
//
// A writer drops a repository's entry after its transaction commits, and
// every drop bumps the repository's generation; a reader caches what it
// read from the database only if the generation did not move meanwhile.
// So a read that raced a commit can never pin the old timestamp in the
// cache after the new one is stored.
type metaCache struct {
	mu   sync.RWMutex
	ts   map[string]store.Meta
	gens map[string]uint64
}

func newMetaCache() *metaCache {
	return &metaCache{ts: map[string]store.Meta{}, gens: map[string]uint64{}}
}

// get returns the cached entry, or the generation to pass to put.
func (c *metaCache) get(repo string) (store.Meta, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.ts[repo]
	return m, c.gens[repo], ok
}

func (c *metaCache) drop(repo string) {
	c.mu.Lock()
	delete(c.ts, repo)
	c.gens[repo]++
	c.mu.Unlock()
}

// put caches m if no drop happened since get returned gen.
func (c *metaCache) put(m store.Meta, gen uint64) {
	c.mu.Lock()
	if c.gens[m.Repo] == gen {
		if old, ok := c.ts[m.Repo]; !ok || old.Version <= m.Version {
			c.ts[m.Repo] = m
		}
	}
	c.mu.Unlock()
}

// ForgetCachedMeta drops the cached timestamp of repo, so that metadata
// another writer put into the store (a restored database, a test that
// plays an attacker holding the database and the online keys) is served
// from the next request on.
func (s *Server) ForgetCachedMeta(repo string) { s.cache.drop(repo) }

func (s *Server) latestTimestamp(ctx context.Context, repo string) (store.Meta, error) {
	m, gen, ok := s.cache.get(repo)
	if ok {
		return m, nil
	}
	m, err := s.st.LatestMeta(ctx, repo, tufrepo.Timestamp)
	if err == nil {
		s.cache.put(m, gen)
	}
	return m, err
}

// tx runs fn in one store transaction and then drops the cached
// timestamps of the repositories fn published to. Callers hold s.mu.
func (s *Server) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	err := s.st.Tx(ctx, fn)
	for _, repo := range s.dirty {
		s.cache.drop(repo)
	}
	s.dirty = s.dirty[:0]
	return err
}

// bootstrap imports keys and initial metadata on first start.
func (s *Server) bootstrap(ctx context.Context) error {
	kdir := filepath.Join(s.cfg.DataDir, "keys")
	if _, err := os.Stat(filepath.Join(kdir, keyset.ImageRootFile)); errors.Is(err, os.ErrNotExist) {
		if s.cfg.KeysDir == "" {
			return fmt.Errorf("server: %s has no keys yet: start it once with --keys DIR/online (made by 'ztota keys init --out DIR')", s.cfg.DataDir)
		}
		if err := os.MkdirAll(kdir, 0o700); err != nil {
			return err
		}
		for _, f := range keyset.OnlineFiles {
			data, err := os.ReadFile(filepath.Join(s.cfg.KeysDir, f))
			if err != nil {
				return fmt.Errorf("server: reading %s: %w (pass the online/ folder made by 'ztota keys init')", f, err)
			}
			if err := keys.WriteFileAtomic(filepath.Join(kdir, f), data, 0o600); err != nil {
				return err
			}
		}
	}
	ok, err := keyset.LoadOnline(kdir)
	if err != nil {
		return err
	}
	s.keys = ok
	if _, err := s.st.LatestMeta(ctx, repoImage, tufrepo.Timestamp); err == nil {
		// Keys first: a restart finishes an interrupted key switch, so
		// that the directors bound below are signed with the keys the
		// newest roots trust.
		if err := s.adoptKeysAtStart(ctx); err != nil {
			return err
		}
		return s.bindDirectors(ctx)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	read := func(f string) ([]byte, error) { return os.ReadFile(filepath.Join(kdir, f)) }
	irb, err := read(keyset.ImageRootFile)
	if err != nil {
		return err
	}
	ir, err := tufrepo.Parse[metadata.RootType](irb)
	if err != nil {
		return err
	}
	if err := tufrepo.Verify(ir, tufrepo.Root, ir); err != nil {
		return fmt.Errorf("image root: %w", err)
	}
	itb, err := read(keyset.ImageTargetsFile)
	if err != nil {
		return err
	}
	it, err := tufrepo.Parse[metadata.TargetsType](itb)
	if err != nil {
		return err
	}
	if err := tufrepo.Verify(ir, tufrepo.Targets, it); err != nil {
		return fmt.Errorf("image targets: %w", err)
	}
	drb, err := read(keyset.DirectorRootFile)
	if err != nil {
		return err
	}
	dr, err := tufrepo.Parse[metadata.RootType](drb)
	if err != nil {
		return err
	}
	if err := tufrepo.Verify(dr, tufrepo.Root, dr); err != nil {
		return fmt.Errorf("director root: %w", err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := store.PutMetaTx(ctx, tx,
			store.Meta{Repo: repoImage, Role: tufrepo.Root, Version: ir.Signed.Version, Data: irb, Expires: ir.Signed.Expires},
			store.Meta{Repo: repoDirector, Role: tufrepo.Root, Version: dr.Signed.Version, Data: drb, Expires: dr.Signed.Expires},
		); err != nil {
			return err
		}
		return s.publishTx(ctx, tx, repoImage, it.Signed.Version, itb, it.Signed.Expires, s.keys.ImageSnapshot, s.keys.ImageTimestamp, true)
	})
}

// publishTx stores targets bytes (when storeTargets) and a new snapshot and
// timestamp that list them.
func (s *Server) publishTx(ctx context.Context, tx *sql.Tx, repo string, tv int64, tb []byte, texp time.Time, snapKey, tsKey *keys.Key, storeTargets bool) error {
	now := s.cfg.Now()
	var prevSnap *metadata.Metadata[metadata.SnapshotType]
	var prevTS *metadata.Metadata[metadata.TimestampType]
	if m, err := latestTx(ctx, tx, repo, tufrepo.Snapshot); err == nil {
		if prevSnap, err = tufrepo.Parse[metadata.SnapshotType](m); err != nil {
			return err
		}
	}
	if m, err := latestTx(ctx, tx, repo, tufrepo.Timestamp); err == nil {
		if prevTS, err = tufrepo.Parse[metadata.TimestampType](m); err != nil {
			return err
		}
	}
	// A director's snapshot and timestamp name their device, so that no
	// other device accepts them (tufrepo.DeviceField).
	dev := repoDevice(repo)
	snap := tufrepo.NextSnapshot(prevSnap, tv, tb, now.Add(s.cfg.SnapshotTTL))
	if dev != "" {
		if err := tufrepo.BindDevice(snap, dev); err != nil {
			return err
		}
	}
	sb, err := tufrepo.Sign(snap, snapKey)
	if err != nil {
		return err
	}
	ts := tufrepo.NextTimestamp(prevTS, snap.Signed.Version, sb, now.Add(s.cfg.TimestampTTL))
	if dev != "" {
		if err := tufrepo.BindDevice(ts, dev); err != nil {
			return err
		}
	}
	tsb, err := tufrepo.Sign(ts, tsKey)
	if err != nil {
		return err
	}
	docs := []store.Meta{}
	if storeTargets {
		docs = append(docs, store.Meta{Repo: repo, Role: tufrepo.Targets, Version: tv, Data: tb, Expires: texp})
	}
	docs = append(docs,
		store.Meta{Repo: repo, Role: tufrepo.Snapshot, Version: snap.Signed.Version, Data: sb, Expires: snap.Signed.Expires},
		store.Meta{Repo: repo, Role: tufrepo.Timestamp, Version: ts.Signed.Version, Data: tsb, Expires: ts.Signed.Expires})
	if err := store.PutMetaTx(ctx, tx, docs...); err != nil {
		return err
	}
	s.dirty = append(s.dirty, repo) // dropped from the cache after commit (see tx)
	return nil
}

func latestTx(ctx context.Context, tx *sql.Tx, repo, role string) ([]byte, error) {
	var data []byte
	err := tx.QueryRowContext(ctx, `SELECT data FROM tuf_meta WHERE repo=? AND role=? ORDER BY version DESC LIMIT 1`, repo, role).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return data, err
}

// assignTx assigns a release to the device: its director lists rel for
// rel's module, with deployment in its custom metadata, and goes on
// listing what it lists for the device's other modules. A nil rel makes
// the director list nothing for any module (a new device).
func (s *Server) assignTx(ctx context.Context, tx *sql.Tx, dev store.Device, rel *store.Release, deployment string) error {
	if rel == nil {
		if err := store.ClearAssignedTx(ctx, tx, dev.ID); err != nil {
			return err
		}
		return s.signDirectorTx(ctx, tx, dev)
	}
	return s.assignModuleTx(ctx, tx, dev, rel.Module, rel, deployment)
}

// assignModuleTx makes the device's director list rel (nil: nothing) for
// module, leaving the other modules' targets and their deployments as
// they are, and signs the device's new director chain.
func (s *Server) assignModuleTx(ctx context.Context, tx *sql.Tx, dev store.Device, module string, rel *store.Release, deployment string) error {
	target := ""
	if rel != nil {
		if rel.Module != module {
			return fmt.Errorf("release %s is of module %s, not %s", rel.Target, rel.Module, module)
		}
		target = rel.Target
	} else {
		deployment = ""
	}
	if err := store.SetModuleAssignedTx(ctx, tx, dev.ID, module, target, deployment); err != nil {
		return err
	}
	return s.signDirectorTx(ctx, tx, dev)
}

// signDirectorTx signs a new director chain for the device listing one
// target per module: the release assigned to each, with the deployment
// that assigned it.
func (s *Server) signDirectorTx(ctx context.Context, tx *sql.Tx, dev store.Device) error {
	repo := directorRepo(dev.ID)
	var prev *metadata.Metadata[metadata.TargetsType]
	if b, err := latestTx(ctx, tx, repo, tufrepo.Targets); err == nil {
		if prev, err = tufrepo.Parse[metadata.TargetsType](b); err != nil {
			return err
		}
	}
	mods, err := store.AssignedTargetsTx(ctx, tx, dev.ID)
	if err != nil {
		return err
	}
	t := tufrepo.NextTargets(prev, s.cfg.Now().Add(s.cfg.DirectorTargetTTL))
	t.Signed.Targets = map[string]*metadata.TargetFiles{}
	for _, m := range mods {
		rel, err := store.ReleaseTx(ctx, tx, m.Assigned)
		if err != nil {
			return err
		}
		sha, err := hex.DecodeString(rel.SHA256)
		if err != nil {
			return err
		}
		tf, err := tufrepo.TargetFile(rel.Target, rel.Length, sha, tufrepo.DirectorCustom(tufrepo.DirectorMeta{
			DeviceID: dev.ID, HardwareID: dev.HardwareID, Deployment: m.Deployment,
		}))
		if err != nil {
			return err
		}
		t.Signed.Targets[rel.Target] = tf
	}
	if err := tufrepo.BindDevice(t, dev.ID); err != nil {
		return err
	}
	tb, err := tufrepo.Sign(t, s.keys.DirectorTargets)
	if err != nil {
		return err
	}
	return s.publishTx(ctx, tx, repo, t.Signed.Version, tb, t.Signed.Expires, s.keys.DirectorSnapshot, s.keys.DirectorTimestamp, true)
}

// ResignExpiring re-signs timestamps (and director targets and snapshots)
// whose remaining validity is below half their lifetime, so that a
// healthy server never lets devices see expired metadata.
func (s *Server) ResignExpiring(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	// Director targets close to expiry: re-sign the whole chain.
	repos, err := s.st.ExpiringRepos(ctx, tufrepo.Targets, now.Add(s.cfg.DirectorTargetTTL/2))
	if err != nil {
		return err
	}
	for _, repo := range repos {
		dev := repoDevice(repo)
		if dev == "" || s.decommissionedRepo(ctx, repo) {
			continue
		}
		if err := s.tx(ctx, func(tx *sql.Tx) error { return s.resignDirectorTx(ctx, tx, dev) }); err != nil {
			return fmt.Errorf("re-signing %s: %w", repo, err)
		}
	}
	// Snapshots and timestamps.
	seen := map[string]bool{}
	for _, role := range []string{tufrepo.Snapshot, tufrepo.Timestamp} {
		ttl := s.cfg.SnapshotTTL
		if role == tufrepo.Timestamp {
			ttl = s.cfg.TimestampTTL
		}
		repos, err := s.st.ExpiringRepos(ctx, role, now.Add(ttl/2))
		if err != nil {
			return err
		}
		for _, repo := range repos {
			if seen[repo] || s.decommissionedRepo(ctx, repo) {
				continue
			}
			seen[repo] = true
			snapKey, tsKey := s.keys.DirectorSnapshot, s.keys.DirectorTimestamp
			if repo == repoImage {
				snapKey, tsKey = s.keys.ImageSnapshot, s.keys.ImageTimestamp
			}
			err := s.tx(ctx, func(tx *sql.Tx) error {
				var tv int64
				var tb []byte
				if err := tx.QueryRowContext(ctx, `SELECT version, data FROM tuf_meta WHERE repo=? AND role=? ORDER BY version DESC LIMIT 1`, repo, tufrepo.Targets).Scan(&tv, &tb); err != nil {
					return err
				}
				return s.publishTx(ctx, tx, repo, tv, tb, time.Time{}, snapKey, tsKey, false)
			})
			if err != nil {
				return fmt.Errorf("re-signing %s %s: %w", repo, role, err)
			}
			s.log.Debug("re-signed expiring metadata", "repo", repo, "role", role)
		}
	}
	return nil
}

// resignDirectorTx re-signs the whole director chain of a device (targets,
// snapshot, timestamp, each one version up) with what it is assigned now.
func (s *Server) resignDirectorTx(ctx context.Context, tx *sql.Tx, dev string) error {
	d, err := store.DeviceTx(ctx, tx, dev)
	if err != nil {
		return err
	}
	return s.reassignTx(ctx, tx, d)
}

// reassignTx signs a new director chain for d with the releases it is
// assigned now (none when it is assigned nothing).
func (s *Server) reassignTx(ctx context.Context, tx *sql.Tx, d store.Device) error {
	return s.signDirectorTx(ctx, tx, d)
}

// bindDirectors runs at every start: it re-signs the director repositories
// whose newest targets, snapshot or timestamp does not name its device
// (tufrepo.DeviceField) — those written by a server from before device
// binding. Each gets a new chain one version up, bound, so its device
// moves to it on its next refresh; agents that check the binding refuse
// the old unbound documents. Nothing is done when every director is bound.
func (s *Server) bindDirectors(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var unbound []string
	err := s.st.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT repo, data FROM tuf_meta t WHERE repo LIKE 'director/%' AND role IN (?,?,?)
			AND version=(SELECT MAX(version) FROM tuf_meta WHERE repo=t.repo AND role=t.role) ORDER BY repo`,
			tufrepo.Targets, tufrepo.Snapshot, tufrepo.Timestamp)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var repo string
			var data []byte
			if err := rows.Scan(&repo, &data); err != nil {
				return err
			}
			dev := repoDevice(repo)
			if dev == "" || (len(unbound) > 0 && unbound[len(unbound)-1] == repo) {
				continue
			}
			if tufrepo.CheckDevice(data, dev) != nil {
				unbound = append(unbound, repo)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("server: finding director metadata without device binding: %w", err)
	}
	for _, repo := range unbound {
		dev := repoDevice(repo)
		err := s.tx(ctx, func(tx *sql.Tx) error { return s.resignDirectorTx(ctx, tx, dev) })
		if errors.Is(err, store.ErrNotFound) {
			// A director without its device row (or release): nothing to
			// re-sign it for; devices cannot fetch it without their key.
			s.log.Warn("director repository of an unknown device left unbound", "repo", repo, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("server: binding %s to its device: %w", repo, err)
		}
	}
	if len(unbound) > 0 {
		s.log.Info("re-signed director repositories to name their device", "count", len(unbound))
	}
	return nil
}
