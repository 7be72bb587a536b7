package osvdb

import (
	"sort"

	"github.com/ztota/ztota/internal/vulnref"
)

// Change is what changed between two snapshots. Every list is sorted and
// the id lists are disjoint.
type Change struct {
	// Added: ids only in the new snapshot (withdrawn on arrival included).
	Added []string
	// Removed: ids only in the old snapshot.
	Removed []string
	// Modified: ids in both whose content differs, except those in Withdrawn.
	Modified []string
	// Withdrawn: ids in both that the new snapshot withdraws and the old did not.
	Withdrawn []string
	// Packages: every (ecosystem, name) named in affected[] by the old or
	// new version of any record above, ecosystems as the records write them.
	// Components under these keys may be judged differently by the two
	// snapshots; components under no key here are judged the same.
	Packages []vulnref.Key
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Modified)+len(c.Withdrawn) == 0
}

// Diff compares two snapshots by record id and content digest. A nil
// snapshot counts as empty.
func Diff(oldDB, newDB *DB) Change {
	var ch Change
	pkgs := map[vulnref.Key]struct{}{}
	note := func(r *Record) {
		if r == nil {
			return
		}
		for _, a := range r.Vuln.GetAffected() {
			if p := a.GetPackage(); p != nil && p.GetName() != "" {
				pkgs[vulnref.Key{Ecosystem: p.GetEcosystem(), Name: p.GetName()}] = struct{}{}
			}
		}
	}
	for _, id := range oldDB.idList() {
		o := oldDB.records[id]
		n, ok := newDB.lookup(id)
		switch {
		case !ok:
			ch.Removed = append(ch.Removed, id)
		case o.Digest == n.Digest:
			continue
		case n.Withdrawn && !o.Withdrawn:
			ch.Withdrawn = append(ch.Withdrawn, id)
		default:
			ch.Modified = append(ch.Modified, id)
		}
		note(o)
		note(n)
	}
	for _, id := range newDB.idList() {
		if _, ok := oldDB.lookup(id); !ok {
			ch.Added = append(ch.Added, id)
			note(newDB.records[id])
		}
	}
	for k := range pkgs {
		ch.Packages = append(ch.Packages, k)
	}
	sort.Slice(ch.Packages, func(i, j int) bool {
		a, b := ch.Packages[i], ch.Packages[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		return a.Name < b.Name
	})
	return ch
}

func (db *DB) idList() []string {
	if db == nil {
		return nil
	}
	return db.ids
}

func (db *DB) lookup(id string) (*Record, bool) {
	if db == nil {
		return nil, false
	}
	r, ok := db.records[id]
	return r, ok
}
