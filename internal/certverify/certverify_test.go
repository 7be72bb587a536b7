package certverify

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/translog"
)

type fixture struct {
	root     *certroot.Root
	online   certroot.Online
	log      *translog.Log
	db       *sql.DB
	now      time.Time
	artifact string
	dir      string // the trust directory
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	now := time.Now().UTC().Truncate(time.Second)
	if err := certroot.Init(dir, certroot.Options{Now: now, LogOrigin: "test/log"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{now: now, artifact: hexSum("artifact"), dir: dir}
	if f.root, err = certroot.Trust(data); err != nil {
		t.Fatal(err)
	}
	if f.online, err = certroot.LoadOnline(dir); err != nil {
		t.Fatal(err)
	}
	f.db, err = sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "log.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	signer, err := certroot.LogSigner("test/log", f.online.Log)
	if err != nil {
		t.Fatal(err)
	}
	if f.log, err = translog.Open(f.db, "test/log", signer); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue signs a result for the fixture's artifact and logs it.
func (f *fixture) issue(t *testing.T, kind, verdict string) ([]byte, *translog.Receipt) {
	t.Helper()
	r := attest.Result{Kind: kind, Verdict: verdict, Issued: f.now, ValidUntil: f.now.Add(time.Hour), Components: 1}
	r.Verifier.ID, r.Verifier.Version = "test-verifier", "1"
	r.DB.ID, r.Policy.Digest, r.Policy.Version = "sha256:"+hexSum("db"), "sha256:"+hexSum("policy"), 1
	r.Artifact.Name, r.Artifact.Size = "app", 1
	env, err := attest.Sign([]attest.Subject{{Name: "app", SHA256: f.artifact}}, r, f.online.Certify)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := f.log.Append(ctx, tx, kind, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, err := f.log.Receipt(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	return env, &rc
}

func (f *fixture) revocations(t *testing.T, version int64, entries ...attest.Revocation) []byte {
	t.Helper()
	b, err := attest.SignRevocations(attest.RevocationList{Version: version, Issued: f.now, Expires: f.now.Add(time.Hour),
		Entries: entries}, f.online.Revoke)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	env, rc := f.issue(t, attest.KindCertificate, attest.VerdictPass)
	rej, rejRC := f.issue(t, attest.KindRejection, attest.VerdictFail)
	digest := attest.DigestOf(env)
	empty := f.revocations(t, 1)
	revoking := f.revocations(t, 2, attest.Revocation{ArtifactSHA256: f.artifact, CertificateDigest: digest,
		Advisories: []string{"GO-2025-0001"}, Time: f.now, Reason: "test"})
	other := newFixture(t)
	tampered := *rc
	tampered.Proof = append(tampered.Proof[:0:0], rc.Proof...)
	tampered.Index++

	ok := Options{Root: f.root, Now: f.now, ArtifactSHA256: f.artifact, Receipt: rc, RequireReceipt: true,
		Revocations: empty, RequireRevocations: true}
	cases := []struct {
		name string
		env  []byte
		mod  func(o *Options)
		want error // nil: success
	}{
		{"valid", env, func(o *Options) {}, nil},
		{"valid, sha256: prefix", env, func(o *Options) { o.ArtifactSHA256 = "sha256:" + f.artifact }, nil},
		{"another artifact", env, func(o *Options) { o.ArtifactSHA256 = hexSum("other") }, ErrWrongSubject},
		{"a rejection", rej, func(o *Options) { o.Receipt = rejRC }, ErrNotCertified},
		{"revoked", env, func(o *Options) { o.Revocations = revoking }, ErrRevoked},
		{"no receipt but required", env, func(o *Options) { o.Receipt = nil }, ErrNotLogged},
		{"receipt for another entry", env, func(o *Options) { o.Receipt = &tampered }, ErrNotLogged},
		{"receipt of another log", env, func(o *Options) { o.Root = other.root }, attest.ErrSignature},
		{"unknown signer", env, func(o *Options) {
			o.Root = other.root
			o.Receipt = nil
			o.RequireReceipt = false
			o.Revocations = nil
			o.RequireRevocations = false
		}, attest.ErrSignature},
		{"expired certificate", env, func(o *Options) { o.Now = f.now.Add(2 * time.Hour) }, attest.ErrExpired},
		{"malformed", []byte(`{"payload":"x"}`), func(o *Options) {}, attest.ErrMalformed},
		{"revocation list required", env, func(o *Options) { o.Revocations = nil }, ErrNoRevocations},
		{"revocation list rolled back", env, func(o *Options) {
			prev, err := attest.VerifyRevocations(f.root, revoking, nil, f.now)
			if err != nil {
				t.Fatal(err)
			}
			o.PrevRevocations = prev
		}, attest.ErrRollback},
		{"truncated revocation list", env, func(o *Options) { o.Revocations = empty[:len(empty)/2] }, attest.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.mod(&o)
			rep, err := Verify(c.env, o)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == nil:
				if rep.Checkpoint == nil || rep.Revocations == nil {
					t.Fatalf("report %+v: log and list not both checked", rep)
				}
			case err == nil:
				t.Fatal("accepted")
			case !errors.Is(err, c.want):
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}
