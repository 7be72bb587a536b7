package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

// onlineRole is a role whose key the server holds.
type onlineRole struct {
	role string
	file string     // canonical file name in DATA/keys
	key  **keys.Key // where the server keeps it
}

func (s *Server) onlineRoles(repo string) []onlineRole {
	if repo == repoImage {
		return []onlineRole{
			{tufrepo.Snapshot, keyset.ImageSnapshotKey, &s.keys.ImageSnapshot},
			{tufrepo.Timestamp, keyset.ImageTimestampKey, &s.keys.ImageTimestamp},
		}
	}
	return []onlineRole{
		{tufrepo.Targets, keyset.DirTargetsKey, &s.keys.DirectorTargets},
		{tufrepo.Snapshot, keyset.DirSnapshotKey, &s.keys.DirectorSnapshot},
		{tufrepo.Timestamp, keyset.DirTimestampKey, &s.keys.DirectorTimestamp},
	}
}

// keyChange is an online key the server must switch to.
type keyChange struct {
	r    onlineRole
	key  *keys.Key
	path string // where it was found
}

// newOnlineKeys finds, for every online role whose key the new root
// replaced, the new private key among the files of DATA/keys (the
// operator copies it there; keys never travel over the API).
func (s *Server) newOnlineKeys(repo string, next *metadata.Metadata[metadata.RootType]) ([]keyChange, error) {
	kdir := filepath.Join(s.cfg.DataDir, "keys")
	var changes []keyChange
	var found map[string]keyChange // key id -> key, loaded lazily
	for _, r := range s.onlineRoles(repo) {
		ids := next.Signed.Roles[r.role].KeyIDs
		cur, err := (*r.key).ID()
		if err != nil {
			return nil, err
		}
		if slices.Contains(ids, cur) {
			continue
		}
		if found == nil {
			found = map[string]keyChange{}
			ents, err := os.ReadDir(kdir)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if e.IsDir() || !strings.HasSuffix(e.Name(), ".key") {
					continue
				}
				p := filepath.Join(kdir, e.Name())
				k, err := keys.Load(p)
				if err != nil {
					continue
				}
				if id, err := k.ID(); err == nil {
					found[id] = keyChange{key: k, path: p}
				}
			}
		}
		var hit *keyChange
		for _, id := range ids {
			if c, ok := found[id]; ok {
				hit = &c
				break
			}
		}
		if hit == nil {
			return nil, errorf(http.StatusConflict, "the new %s root gives the %s role key %s, which this server does not hold: copy the new key file (made by 'ztota keys rotate --role %s') into %s and send the root again",
				repo, r.role, strings.Join(ids, ","), r.role, kdir)
		}
		hit.r = r
		changes = append(changes, *hit)
	}
	return changes, nil
}

// adoptKeysTx switches to the new online keys and re-signs what they
// sign, so devices that took the new root find metadata it accepts.
func (s *Server) adoptKeysTx(ctx context.Context, tx *sql.Tx, repo string, changes []keyChange) error {
	if len(changes) == 0 {
		return nil
	}
	for _, c := range changes {
		*c.r.key = c.key
	}
	if repo == repoImage {
		var tv int64
		var tb []byte
		if err := tx.QueryRowContext(ctx, `SELECT version, data FROM tuf_meta WHERE repo=? AND role=? ORDER BY version DESC LIMIT 1`, repoImage, tufrepo.Targets).Scan(&tv, &tb); err != nil {
			return err
		}
		return s.publishTx(ctx, tx, repoImage, tv, tb, s.cfg.Now(), s.keys.ImageSnapshot, s.keys.ImageTimestamp, false)
	}
	devs, err := store.DevicesTx(ctx, tx)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if !d.Decommissioned.IsZero() {
			continue // a decommissioned device's director is no longer signed
		}
		if err := s.reassignTx(ctx, tx, d); err != nil {
			return fmt.Errorf("re-signing the director of %s: %w", d.ID, err)
		}
	}
	return nil
}

// saveKeys writes adopted keys under their canonical names, so a restart
// loads them; the replaced key files are kept beside, renamed.
func (s *Server) saveKeys(changes []keyChange, rootVersion int64) error {
	for _, c := range changes {
		final := filepath.Join(s.cfg.DataDir, "keys", c.r.file)
		if c.path == final {
			continue
		}
		if _, err := os.Stat(final); err == nil {
			if err := os.Rename(final, fmt.Sprintf("%s.retired-%d", final, rootVersion-1)); err != nil {
				return err
			}
		}
		data, err := c.key.Marshal()
		if err != nil {
			return err
		}
		if err := keys.WriteFileAtomic(final, data, 0o600); err != nil {
			return err
		}
		os.Remove(c.path)
	}
	return nil
}

// targetsFollowRoot refuses a new image root under which the current image
// targets would not verify: the targets key is offline, so the server
// cannot re-sign them, and every device that took the root would then
// fail every refresh. The integrator re-signs the targets with the new key
// (co-signed by the old one) first; "ztota keys publish" does that.
func (s *Server) targetsFollowRoot(ctx context.Context, next *metadata.Metadata[metadata.RootType]) error {
	cur, err := s.st.LatestMeta(ctx, repoImage, tufrepo.Targets)
	if err != nil {
		return err
	}
	t, err := tufrepo.Parse[metadata.TargetsType](cur.Data)
	if err != nil {
		return err
	}
	if err := tufrepo.Verify(next, tufrepo.Targets, t); err != nil {
		return errorf(http.StatusConflict, "the current image targets (version %d) are not signed by the targets key of image root v%d: re-sign them with the new key first ('ztota keys publish --repo image' does): %v",
			cur.Version, next.Signed.Version, err)
	}
	return nil
}

// ErrOnlineKeyMismatch: at start, an online key in DATA/keys is not the
// one the newest stored root names, and no key file there is.
var ErrOnlineKeyMismatch = errors.New("an online key does not match the newest root")

// adoptKeysAtStart checks, when the server starts, that every online key
// it loaded from DATA/keys is the one the newest stored root of its
// repository names. A rotation whose root was stored but whose keys were
// not yet written under their canonical names (the server stopped in
// between) is finished here from the new key file still in DATA/keys;
// without it the server refuses to start rather than sign with a key
// devices no longer trust.
func (s *Server) adoptKeysAtStart(ctx context.Context) error {
	for _, repo := range []string{repoImage, repoDirector} {
		m, err := s.st.LatestMeta(ctx, repo, tufrepo.Root)
		if err != nil {
			return err
		}
		root, err := tufrepo.Parse[metadata.RootType](m.Data)
		if err != nil {
			return err
		}
		changes, err := s.newOnlineKeys(repo, root)
		if err != nil {
			return fmt.Errorf("server: %w: %s root v%d (in %s): %v", ErrOnlineKeyMismatch, repo, root.Signed.Version, filepath.Join(s.cfg.DataDir, "keys"), err)
		}
		if len(changes) == 0 {
			continue
		}
		for _, c := range changes {
			*c.r.key = c.key
			s.log.Warn("adopting the online key the stored root names", "repo", repo, "role", c.r.role, "file", c.path)
		}
		if err := s.saveKeys(changes, root.Signed.Version); err != nil {
			return err
		}
	}
	return nil
}
