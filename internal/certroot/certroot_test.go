package certroot

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/tufrepo"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func initDir(t *testing.T, o Options) string {
	t.Helper()
	dir := t.TempDir()
	if o.Now.IsZero() {
		o.Now = t0
	}
	if err := Init(dir, o); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return dir
}

func TestInitLayoutAndTrust(t *testing.T) {
	for _, alg := range []string{keys.Ed25519, keys.ECDSAP256} {
		t.Run(alg, func(t *testing.T) {
			dir := initDir(t, Options{Alg: alg, RootKeys: 3, RootThreshold: 2})
			cur := mustRead(t, filepath.Join(dir, CurrentRootFile))
			v1 := mustRead(t, filepath.Join(dir, RootsDir, VersionFile(1)))
			if !bytes.Equal(cur, v1) {
				t.Fatal("root.json differs from root/1.root.json")
			}
			r, err := Trust(cur)
			if err != nil {
				t.Fatalf("Trust: %v", err)
			}
			if r.Version() != 1 || !r.Expires().Equal(t0.Add(DefaultExpires)) {
				t.Fatalf("version %d expires %s", r.Version(), r.Expires())
			}
			if n, th := len(r.KeyIDs(RoleRoot)), r.Threshold(RoleRoot); n != 3 || th != 2 {
				t.Fatalf("root role: %d keys threshold %d", n, th)
			}
			for i := 1; i <= 3; i++ {
				k, err := keys.Load(filepath.Join(dir, OfflineDir, RootKeyFile(i)))
				if err != nil {
					t.Fatal(err)
				}
				if k.Alg != alg {
					t.Fatalf("root key alg %s, want %s", k.Alg, alg)
				}
			}
			on, err := LoadOnline(dir)
			if err != nil {
				t.Fatalf("LoadOnline: %v", err)
			}
			if on.Certify.Alg != alg || on.Revoke.Alg != alg || on.Log.Alg != keys.Ed25519 {
				t.Fatalf("online algs %s %s %s", on.Certify.Alg, on.Revoke.Alg, on.Log.Alg)
			}
			if err := r.CheckOnline(on); err != nil {
				t.Fatalf("CheckOnline: %v", err)
			}
			// Roles swapped are refused.
			if err := r.CheckOnline(Online{Certify: on.Revoke, Revoke: on.Certify, Log: on.Log}); err == nil {
				t.Fatal("CheckOnline accepted swapped keys")
			}
			// The online/ folder alone works too.
			if _, err := LoadOnline(filepath.Join(dir, OnlineDir)); err != nil {
				t.Fatalf("LoadOnline(online/): %v", err)
			}
			if r.KeyIDs("targets") != nil || r.Threshold("targets") != 0 || r.PublicKeys("targets") != nil {
				t.Fatal("unknown role has keys")
			}
			b := r.Bytes()
			b[0] = 'x'
			if r.Bytes()[0] == 'x' {
				t.Fatal("Bytes returns the internal buffer")
			}
		})
	}
}

func TestInitRefusesOverwriteAndBadOptions(t *testing.T) {
	dir := initDir(t, Options{})
	before := mustRead(t, filepath.Join(dir, CurrentRootFile))
	if err := Init(dir, Options{Now: t0}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("second Init: %v", err)
	}
	if !bytes.Equal(before, mustRead(t, filepath.Join(dir, CurrentRootFile))) {
		t.Fatal("second Init changed root.json")
	}
	for name, o := range map[string]Options{
		"threshold above keys": {RootKeys: 2, RootThreshold: 3},
		"too many keys":        {RootKeys: MaxKeysPerRole + 1},
		"bad alg":              {Alg: "rsa"},
		"negative expiry":      {Expires: -time.Hour},
	} {
		d := t.TempDir()
		if err := Init(d, o); err == nil {
			t.Errorf("%s: Init accepted", name)
		}
		if _, err := os.Stat(filepath.Join(d, CurrentRootFile)); err == nil {
			t.Errorf("%s: Init wrote a root", name)
		}
	}
}

func TestLoadOnlineMissing(t *testing.T) {
	dir := initDir(t, Options{})
	if err := os.Remove(filepath.Join(dir, OnlineDir, OnlineKeyFile(RoleRevoke))); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOnline(dir); err == nil || !strings.Contains(err.Error(), "revoke.key missing") {
		t.Fatalf("LoadOnline without revoke key: %v", err)
	}
	// An ECDSA key in the log slot is refused.
	k, _ := keys.Generate(keys.ECDSAP256)
	d2 := t.TempDir()
	for _, role := range OnlineRoles {
		if err := keys.Save(filepath.Join(d2, OnlineKeyFile(role)), k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadOnline(d2); err == nil || !strings.Contains(err.Error(), "ed25519") {
		t.Fatalf("ECDSA log key: %v", err)
	}
}

func TestRotateChain(t *testing.T) {
	dir := initDir(t, Options{RootKeys: 3, RootThreshold: 2})
	r1b := mustRead(t, filepath.Join(dir, CurrentRootFile))
	on1, err := LoadOnline(dir)
	if err != nil {
		t.Fatal(err)
	}
	r2b, err := Rotate(dir, RotateOptions{Roles: []string{RoleCertify}, Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatalf("Rotate 1: %v", err)
	}
	r3b, err := Rotate(dir, RotateOptions{RootKeys: 2, RootThreshold: 2, Roles: []string{RoleRevoke, RoleLog}, Alg: keys.ECDSAP256, Now: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatalf("Rotate 2: %v", err)
	}
	if !bytes.Equal(r3b, mustRead(t, filepath.Join(dir, CurrentRootFile))) || !bytes.Equal(r2b, mustRead(t, filepath.Join(dir, RootsDir, VersionFile(2)))) {
		t.Fatal("rotation files do not hold the returned roots")
	}
	// Old keys are kept, not deleted.
	for _, p := range []string{
		filepath.Join(OnlineDir, "certify.key.retired-1"),
		filepath.Join(OnlineDir, "revoke.key.retired-2"),
		filepath.Join(OnlineDir, "log.key.retired-2"),
		filepath.Join(OfflineDir, "retired-2", RootKeyFile(3)),
	} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("retired key %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, OfflineDir, RootKeyFile(3))); err == nil {
		t.Error("a third root key remains after rotating to two")
	}

	now := t0.Add(3 * time.Hour)
	c1, err := Trust(r1b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Update(r3b, now); !errors.Is(err, ErrVersion) {
		t.Fatalf("skip 1->3: %v, want ErrVersion", err)
	}
	if _, err := c1.Update(r1b, now); !errors.Is(err, ErrVersion) {
		t.Fatalf("1->1: %v, want ErrVersion", err)
	}
	c2, err := c1.Update(r2b, now)
	if err != nil {
		t.Fatalf("1->2: %v", err)
	}
	c3, err := c2.Update(r3b, now)
	if err != nil {
		t.Fatalf("2->3: %v", err)
	}
	if c3.Version() != 3 || c3.Threshold(RoleRoot) != 2 || len(c3.KeyIDs(RoleRoot)) != 2 {
		t.Fatalf("root 3: version %d, %d root keys threshold %d", c3.Version(), len(c3.KeyIDs(RoleRoot)), c3.Threshold(RoleRoot))
	}
	if _, err := c3.Update(r2b, now); !errors.Is(err, ErrVersion) {
		t.Fatalf("3->2: %v, want ErrVersion", err)
	}
	cc, err := c1.UpdateChain([][]byte{r2b, r3b}, now)
	if err != nil || cc.Version() != 3 {
		t.Fatalf("UpdateChain: %v", err)
	}
	// The online keys now: certify re-keyed at 2, revoke and log at 3.
	on3, err := LoadOnline(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c3.CheckOnline(on3); err != nil {
		t.Fatalf("CheckOnline(3): %v", err)
	}
	if err := c3.CheckOnline(on1); err == nil {
		t.Fatal("root 3 accepts the original online keys")
	}
	if on3.Revoke.Alg != keys.ECDSAP256 || on3.Log.Alg != keys.Ed25519 {
		t.Fatalf("rotated algs revoke %s log %s", on3.Revoke.Alg, on3.Log.Alg)
	}
	// Rotating again with nothing to change re-signs with a later expiry.
	r4b, err := Rotate(dir, RotateOptions{Now: t0.Add(100 * 24 * time.Hour)})
	if err != nil {
		t.Fatalf("re-sign: %v", err)
	}
	c4, err := c3.Update(r4b, t0.Add(100*24*time.Hour))
	if err != nil || !c4.Expires().After(c3.Expires()) || !slices.Equal(c4.KeyIDs(RoleCertify), c3.KeyIDs(RoleCertify)) {
		t.Fatalf("re-signed root: %v", err)
	}
}

func TestRotateRefusals(t *testing.T) {
	dir := initDir(t, Options{RootKeys: 3, RootThreshold: 2})
	for name, o := range map[string]RotateOptions{
		"root in roles":      {Roles: []string{RoleRoot}},
		"unknown role":       {Roles: []string{"targets"}},
		"duplicate role":     {Roles: []string{RoleLog, RoleLog}},
		"threshold too high": {RootThreshold: 4},
		"new threshold high": {RootKeys: 1, RootThreshold: 2},
		"bad alg":            {Alg: "dsa"},
	} {
		o.Now = t0
		if _, err := Rotate(dir, o); err == nil {
			t.Errorf("%s: Rotate accepted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, RootsDir, VersionFile(2))); err == nil {
		t.Fatal("a refused rotation wrote root 2")
	}
	// With only one of three keys (threshold 2) at hand, no rotation.
	for _, i := range []int{2, 3} {
		if err := os.Rename(filepath.Join(dir, OfflineDir, RootKeyFile(i)), filepath.Join(t.TempDir(), "k")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Rotate(dir, RotateOptions{RootKeys: 1, Now: t0}); err == nil || !strings.Contains(err.Error(), "only 1") {
		t.Fatalf("rotation with one of threshold two keys: %v", err)
	}
}

// twoRoots returns a trusted root 1 (3 root keys, threshold 2), its root
// keys and online public keys, for hand-made successors.
func twoRoots(t *testing.T) (*Root, []*keys.Key, map[string]RoleSpec) {
	t.Helper()
	var rk []*keys.Key
	var pubs []crypto.PublicKey
	for i := 0; i < 3; i++ {
		k, _ := keys.Generate("")
		rk = append(rk, k)
		pubs = append(pubs, k.Public())
	}
	specs := map[string]RoleSpec{RoleRoot: {Keys: pubs, Threshold: 2}}
	for _, role := range OnlineRoles {
		k, _ := keys.Generate("")
		specs[role] = RoleSpec{Keys: []crypto.PublicKey{k.Public()}, Threshold: 1}
	}
	b, err := Build(1, specs, t0.Add(24*time.Hour), rk...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Trust(b)
	if err != nil {
		t.Fatal(err)
	}
	return r, rk, specs
}

func TestUpdateThresholds(t *testing.T) {
	r1, rk, specs := twoRoots(t)
	nk, _ := keys.Generate("")
	next := map[string]RoleSpec{}
	for k, v := range specs {
		next[k] = v
	}
	next[RoleRoot] = RoleSpec{Keys: []crypto.PublicKey{nk.Public()}, Threshold: 1}
	exp := t0.Add(48 * time.Hour)

	below, err := Build(2, next, exp, rk[0], nk) // one old key of threshold two
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Update(below, t0); !errors.Is(err, ErrSignature) {
		t.Fatalf("signed below the old threshold: %v, want ErrSignature", err)
	}
	notSelf, _ := Build(2, next, exp, rk[0], rk[1]) // old threshold, not the new key
	if _, err := r1.Update(notSelf, t0); !errors.Is(err, ErrSignature) {
		t.Fatalf("not signed by its own threshold: %v, want ErrSignature", err)
	}
	online, _ := keys.Generate("")
	byOther, _ := Build(2, next, exp, online, nk)
	if _, err := r1.Update(byOther, t0); !errors.Is(err, ErrSignature) {
		t.Fatalf("signed by a non-root key: %v, want ErrSignature", err)
	}
	good, _ := Build(2, next, exp, rk[0], rk[2], nk)
	r2, err := r1.Update(good, t0)
	if err != nil {
		t.Fatalf("good rotation: %v", err)
	}
	// Trust of a root signed by too few of its own keys.
	half, _ := Build(1, specs, exp, rk[1])
	if _, err := Trust(half); !errors.Is(err, ErrSignature) {
		t.Fatalf("Trust of an under-signed root: %v", err)
	}
	// Expiry: a root expired by now is refused by Update but accepted as
	// an intermediate step of a chain, whose last root must be current.
	short, _ := Build(3, next, t0.Add(time.Hour), nk)
	late := t0.Add(2 * time.Hour)
	if _, err := r2.Update(short, late); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired root: %v, want ErrExpired", err)
	}
	last, _ := Build(4, next, t0.Add(30*24*time.Hour), nk)
	if r4, err := r1.UpdateChain([][]byte{good, short, last}, late); err != nil || r4.Version() != 4 {
		t.Fatalf("chain through an expired root: %v", err)
	}
	if _, err := r1.UpdateChain([][]byte{good, short}, late); !errors.Is(err, ErrExpired) {
		t.Fatalf("chain ending expired: %v, want ErrExpired", err)
	}
	if _, err := r1.UpdateChain(make([][]byte, MaxChainLength+1), late); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long chain: %v", err)
	}
}

// mutate parses a root into generic JSON, applies f to its signed part
// and re-encodes it.
func mutate(t *testing.T, data []byte, f func(signed map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	f(m["signed"].(map[string]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRefusesMalformed(t *testing.T) {
	r, rk, specs := twoRoots(t)
	good := r.Bytes()
	roles := func(s map[string]any) map[string]any { return s["roles"].(map[string]any) }
	role := func(s map[string]any, name string) map[string]any { return roles(s)[name].(map[string]any) }
	certifyID := r.KeyIDs(RoleCertify)[0]

	otaRoot, err := tufrepo.NewRoot(1, map[string]tufrepo.RoleSpec{
		tufrepo.Root: {Keys: rk[:1], Threshold: 1}, tufrepo.Targets: {Keys: rk[1:2], Threshold: 1},
		tufrepo.Snapshot: {Keys: rk[2:3], Threshold: 1}, tufrepo.Timestamp: {Keys: rk[2:3], Threshold: 1},
	}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otaBytes, _ := tufrepo.Sign(otaRoot, rk[0])

	ecdsaLog, _ := keys.Generate(keys.ECDSAP256)
	logSpecs := map[string]RoleSpec{}
	for k, v := range specs {
		logSpecs[k] = v
	}
	logSpecs[RoleLog] = RoleSpec{Keys: []crypto.PublicKey{ecdsaLog.Public()}, Threshold: 1}

	cases := map[string][]byte{
		"empty":         {},
		"not json":      []byte("root"),
		"truncated":     good[:len(good)/2],
		"json null":     []byte("null"),
		"OTA root":      otaBytes,
		"no purpose":    mutate(t, good, func(s map[string]any) { delete(s, PurposeField) }),
		"wrong purpose": mutate(t, good, func(s map[string]any) { s[PurposeField] = "ota" }),
		"extra field":   mutate(t, good, func(s map[string]any) { s["note"] = "x" }),
		"case variant":  mutate(t, good, func(s map[string]any) { s["Roles"] = s["roles"] }),
		"missing role":  mutate(t, good, func(s map[string]any) { delete(roles(s), RoleRevoke) }),
		"extra role": mutate(t, good, func(s map[string]any) {
			roles(s)["targets"] = map[string]any{"keyids": []any{}, "threshold": 1}
		}),
		"null role":      mutate(t, good, func(s map[string]any) { roles(s)[RoleLog] = nil }),
		"threshold 0":    mutate(t, good, func(s map[string]any) { role(s, RoleCertify)["threshold"] = 0 }),
		"threshold high": mutate(t, good, func(s map[string]any) { role(s, RoleRoot)["threshold"] = 4 }),
		"no keys":        mutate(t, good, func(s map[string]any) { role(s, RoleRevoke)["keyids"] = []any{} }),
		"unknown keyid":  mutate(t, good, func(s map[string]any) { role(s, RoleRevoke)["keyids"] = []any{strings.Repeat("ab", 32)} }),
		"shared key": mutate(t, good, func(s map[string]any) {
			role(s, RoleRevoke)["keyids"] = []any{certifyID}
		}),
		"duplicate in role": mutate(t, good, func(s map[string]any) {
			role(s, RoleCertify)["keyids"] = []any{certifyID, certifyID}
		}),
		"key id mismatch": mutate(t, good, func(s map[string]any) {
			ks := s["keys"].(map[string]any)
			k := ks[certifyID]
			delete(ks, certifyID)
			ks[strings.Repeat("cd", 32)] = k
			role(s, RoleCertify)["keyids"] = []any{strings.Repeat("cd", 32)}
		}),
		"short ed25519 key": mutate(t, good, func(s map[string]any) {
			s["keys"].(map[string]any)[certifyID].(map[string]any)["keyval"] = map[string]any{"public": "abcd"}
		}),
		"rsa key type": mutate(t, good, func(s map[string]any) {
			s["keys"].(map[string]any)[certifyID].(map[string]any)["keytype"] = "rsa"
		}),
		"unused key": mutate(t, good, func(s map[string]any) {
			s["keys"].(map[string]any)[strings.Repeat("ef", 32)] = s["keys"].(map[string]any)[certifyID]
		}),
		"version 0":  mutate(t, good, func(s map[string]any) { s["version"] = 0 }),
		"no expiry":  mutate(t, good, func(s map[string]any) { s["expires"] = "0001-01-01T00:00:00Z" }),
		"bad expiry": mutate(t, good, func(s map[string]any) { s["expires"] = "tomorrow" }),
		"wrong type": mutate(t, good, func(s map[string]any) { s["_type"] = "targets" }),
	}
	for name, data := range cases {
		_, err := Parse(data)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Build(1, logSpecs, t0, rk...); err == nil || !strings.Contains(err.Error(), "ed25519") {
		t.Errorf("ECDSA log key: %v", err)
	}
	two := map[string]RoleSpec{}
	for k, v := range specs {
		two[k] = v
	}
	two[RoleLog] = RoleSpec{Keys: append(slices.Clone(specs[RoleLog].Keys), ecdsaLog.Public()), Threshold: 1}
	if _, err := Build(1, two, t0, rk...); err == nil {
		t.Error("two log keys accepted")
	}
	if _, err := Build(1, map[string]RoleSpec{"extra": {}}, t0); err == nil {
		t.Error("Build accepted an unknown role")
	}
	big := append(bytes.Repeat([]byte(" "), MaxRootSize), good...)
	if _, err := Parse(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v, want ErrTooLarge", err)
	}
}

func TestLogKeys(t *testing.T) {
	dir := initDir(t, Options{Alg: keys.ECDSAP256})
	r, err := LoadCurrent(dir)
	if err != nil {
		t.Fatal(err)
	}
	on, err := LoadOnline(dir)
	if err != nil {
		t.Fatal(err)
	}
	const name = "ztota.test/log"
	vkey, err := r.LogVerifierKey(name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := LogSigner(name, on.Log)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "ztota.test/log\n1\nAAAA\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil || len(n.Sigs) != 1 {
		t.Fatalf("note did not verify with the root's log key: %v", err)
	}
	// Another key's note does not verify.
	other, _ := keys.Generate(keys.Ed25519)
	s2, _ := LogSigner(name, other)
	msg2, _ := note.Sign(&note.Note{Text: "x\n"}, s2)
	if _, err := note.Open(msg2, note.VerifierList(v)); err == nil {
		t.Fatal("a note by another key verified")
	}
	if _, err := LogSigner(name, on.Certify); err == nil {
		t.Fatal("LogSigner accepted an ECDSA key")
	}
	if _, err := r.LogVerifierKey("bad name+x"); err == nil {
		t.Fatal("invalid note name accepted")
	}
}
