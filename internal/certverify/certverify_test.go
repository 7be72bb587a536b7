package certverify

import (
	"errors"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
)

// fixture is the shared certificate fixture.
type fixture struct{ *certverifytest.Fixture }

func newFixture(t *testing.T) *fixture { return &fixture{certverifytest.New(t)} }

func hexSum(s string) string { return certverifytest.HexSum(s) }

func TestVerify(t *testing.T) {
	f := newFixture(t)
	env, rc := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	rej, rejRC := f.Issue(t, attest.KindRejection, attest.VerdictFail)
	digest := attest.DigestOf(env)
	empty := f.Revocations(t, 1)
	revoking := f.Revocations(t, 2, attest.Revocation{ArtifactSHA256: f.Artifact, CertificateDigest: digest,
		Advisories: []string{"GO-2025-0001"}, Time: f.Now, Reason: "test"})
	other := newFixture(t)
	tampered := *rc
	tampered.Proof = append(tampered.Proof[:0:0], rc.Proof...)
	tampered.Index++

	ok := Options{Root: f.Root, Now: f.Now, ArtifactSHA256: f.Artifact, Receipt: rc, RequireReceipt: true,
		Revocations: empty, RequireRevocations: true}
	cases := []struct {
		name string
		env  []byte
		mod  func(o *Options)
		want error // nil: success
	}{
		{"valid", env, func(o *Options) {}, nil},
		{"valid, sha256: prefix", env, func(o *Options) { o.ArtifactSHA256 = "sha256:" + f.Artifact }, nil},
		{"another artifact", env, func(o *Options) { o.ArtifactSHA256 = hexSum("other") }, ErrWrongSubject},
		{"a rejection", rej, func(o *Options) { o.Receipt = rejRC }, ErrNotCertified},
		{"revoked", env, func(o *Options) { o.Revocations = revoking }, ErrRevoked},
		{"no receipt but required", env, func(o *Options) { o.Receipt = nil }, ErrNotLogged},
		{"receipt for another entry", env, func(o *Options) { o.Receipt = &tampered }, ErrNotLogged},
		{"receipt of another log", env, func(o *Options) { o.Root = other.Root }, attest.ErrSignature},
		{"unknown signer", env, func(o *Options) {
			o.Root = other.Root
			o.Receipt = nil
			o.RequireReceipt = false
			o.Revocations = nil
			o.RequireRevocations = false
		}, attest.ErrSignature},
		{"expired certificate", env, func(o *Options) { o.Now = f.Now.Add(2 * time.Hour) }, attest.ErrExpired},
		{"malformed", []byte(`{"payload":"x"}`), func(o *Options) {}, attest.ErrMalformed},
		{"revocation list required", env, func(o *Options) { o.Revocations = nil }, ErrNoRevocations},
		{"revocation list rolled back", env, func(o *Options) {
			prev, err := attest.VerifyRevocations(f.Root, revoking, nil, f.Now)
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
