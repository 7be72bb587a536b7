package attest

import (
	"encoding/base64"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/keys"
)

func revList(version int64, entries ...Revocation) RevocationList {
	return RevocationList{Version: version, Issued: t0, Expires: t0.Add(7 * 24 * time.Hour), Entries: entries}
}

var (
	revA = Revocation{ArtifactSHA256: sha("a"), CertificateDigest: digest("cert-a"), Advisories: []string{"GO-2022-0969"}, Time: t0, Reason: "new advisory"}
	revB = Revocation{ArtifactSHA256: sha("b"), Time: t0, Reason: "withdrawn by the integrator"}
	revC = Revocation{ArtifactSHA256: sha("c"), CertificateDigest: digest("cert-c"), Time: t0.Add(time.Minute)}
)

func TestRevocationsRoundTrip(t *testing.T) {
	for _, alg := range []string{keys.Ed25519, keys.ECDSAP256} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg, 1, 1)
			// Entries given out of order are signed sorted.
			env, err := SignRevocations(revList(1, revC, revA, revB), f.revoke)
			if err != nil {
				t.Fatal(err)
			}
			l, err := VerifyRevocations(f.root, env, nil, now)
			if err != nil {
				t.Fatalf("VerifyRevocations: %v", err)
			}
			want := []Revocation{revA, revB, revC}
			slices.SortFunc(want, func(a, b Revocation) int { return strings.Compare(a.ArtifactSHA256, b.ArtifactSHA256) })
			if l.Version != 1 || !reflect.DeepEqual(l.Entries, want) || reflect.DeepEqual(want, []Revocation{revC, revA, revB}) {
				t.Fatalf("list %+v", l)
			}
			// Lookup: the named certificate, any certificate when the
			// entry names none, not another certificate or artifact.
			if e, ok := l.Lookup(revA.ArtifactSHA256, revA.CertificateDigest); !ok || e.Reason != revA.Reason {
				t.Fatal("revoked certificate not found")
			}
			if _, ok := l.Lookup("sha256:"+revA.ArtifactSHA256, ""); !ok {
				t.Fatal("artifact lookup with prefix and no certificate missed")
			}
			if _, ok := l.Lookup(revA.ArtifactSHA256, digest("a later certificate")); ok {
				t.Fatal("entry for one certificate applied to another")
			}
			if _, ok := l.Lookup(revB.ArtifactSHA256, digest("any")); !ok {
				t.Fatal("entry without certificate did not apply to every certificate")
			}
			if _, ok := l.Lookup(sha("z"), ""); ok {
				t.Fatal("unrevoked artifact found")
			}
			var nilList *RevocationList
			if _, ok := nilList.Lookup(revA.ArtifactSHA256, ""); ok {
				t.Fatal("nil list found something")
			}
			// An empty list is valid.
			env0, err := SignRevocations(revList(1), f.revoke)
			if err != nil {
				t.Fatal(err)
			}
			if l0, err := VerifyRevocations(f.root, env0, nil, now); err != nil || len(l0.Entries) != 0 {
				t.Fatalf("empty list: %v", err)
			}
		})
	}
}

func TestRevocationsHistory(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	sign := func(l RevocationList) []byte {
		t.Helper()
		env, err := SignRevocations(l, f.revoke)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	v2, err := VerifyRevocations(f.root, sign(revList(2, revA)), nil, now)
	if err != nil {
		t.Fatal(err)
	}
	all := []error{ErrRollback, ErrConflict, ErrForgotten, ErrExpired, ErrMalformed, ErrSignature, ErrNotYetValid, ErrWrongType, ErrTooLarge}
	only := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
			return
		}
		for _, other := range all {
			if other != want && errors.Is(err, other) {
				t.Errorf("%s: %v also matches %v", name, err, other)
			}
		}
	}
	_, err = VerifyRevocations(f.root, sign(revList(1, revA)), v2, now)
	only("rollback", err, ErrRollback)
	_, err = VerifyRevocations(f.root, sign(revList(2, revA, revB)), v2, now)
	only("same version, more entries", err, ErrConflict)
	changed := revA
	changed.Reason = "other"
	_, err = VerifyRevocations(f.root, sign(revList(2, changed)), v2, now)
	only("same version, other reason", err, ErrConflict)
	later := revList(2, revA)
	later.Expires = later.Expires.Add(time.Hour)
	_, err = VerifyRevocations(f.root, sign(later), v2, now)
	only("same version, other expiry", err, ErrConflict)
	_, err = VerifyRevocations(f.root, sign(revList(3, revB)), v2, now)
	only("forgetting", err, ErrForgotten)
	otherCert := revA
	otherCert.CertificateDigest = digest("another")
	_, err = VerifyRevocations(f.root, sign(revList(3, otherCert)), v2, now)
	only("entry moved to another certificate", err, ErrForgotten)
	expired := revList(3, revA)
	expired.Expires = now.Add(-time.Second)
	expired.Issued = now.Add(-time.Hour)
	_, err = VerifyRevocations(f.root, sign(expired), v2, now)
	only("expired", err, ErrExpired)
	future := revList(3, revA)
	future.Issued, future.Expires = now.Add(time.Hour), now.Add(48*time.Hour)
	_, err = VerifyRevocations(f.root, sign(future), v2, now)
	only("issued in the future", err, ErrNotYetValid)
	good := sign(revList(2, revA))
	for i := 0; i < len(good); i++ {
		_, err := VerifyRevocations(f.root, good[:i], v2, now)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d bytes: %v, want ErrMalformed", i, err)
		}
	}
	_, err = VerifyRevocations(f.root, append(make([]byte, MaxRevocationsSize), good...), v2, now)
	only("oversized", err, ErrTooLarge)

	// Accepted: a replay of the same version and content, and a superset.
	if l, err := VerifyRevocations(f.root, good, v2, now); err != nil || l.Version != 2 {
		t.Fatalf("same list again: %v", err)
	}
	v3, err := VerifyRevocations(f.root, sign(revList(3, revA, revB)), v2, now)
	if err != nil {
		t.Fatalf("superset: %v", err)
	}
	if _, err := VerifyRevocations(f.root, sign(revList(5, revC, revB, revA)), v3, now); err != nil {
		t.Fatalf("version skip with every entry kept: %v", err)
	}
	// A hand-built prev, unsorted and in another zone, compares by content.
	hand := revList(3, revB, revA)
	hand.Issued = hand.Issued.In(time.FixedZone("", 7200))
	if _, err := VerifyRevocations(f.root, sign(revList(3, revA, revB)), &hand, now); err != nil {
		t.Fatalf("same content as a hand-built prev: %v", err)
	}
}

func TestRevocationsMalformed(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	good, _ := SignRevocations(revList(1, revA, revB), f.revoke)
	payload, _ := base64.StdEncoding.DecodeString(envelopeMap(t, good).get("payload").(string))
	unsorted := revList(1, revA, revB).canonical()
	slices.Reverse(unsorted.Entries)
	dup := revList(1, revA, revA).canonical()
	raw := map[string]string{
		"not json":         "revoked",
		"unknown field":    strings.Replace(string(payload), `{"version"`, `{"extra":1,"version"`, 1),
		"version 0":        strings.Replace(string(payload), `"version":1`, `"version":0`, 1),
		"version string":   strings.Replace(string(payload), `"version":1`, `"version":"1"`, 1),
		"entries null":     `{"version":1,"issued":"2026-03-01T12:00:00Z","expires":"2026-03-08T12:00:00Z","entries":null}`,
		"expires first":    `{"version":1,"issued":"2026-03-01T12:00:00Z","expires":"2026-03-01T11:00:00Z","entries":[]}`,
		"no issue time":    `{"version":1,"issued":"0001-01-01T00:00:00Z","expires":"2026-03-01T11:00:00Z","entries":[]}`,
		"bad artifact":     strings.Replace(string(payload), revA.ArtifactSHA256, "sha256:"+revA.ArtifactSHA256[7:], 1),
		"bad cert digest":  strings.Replace(string(payload), revA.CertificateDigest, revA.CertificateDigest[7:], 1),
		"unsorted":         string(marshal(t, unsorted)),
		"duplicate pair":   string(marshal(t, dup)),
		"entry time zero":  strings.Replace(string(payload), `"time":"2026-03-01T12:00:00Z"`, `"time":"0001-01-01T00:00:00Z"`, 1),
		"advisory empty":   strings.Replace(string(payload), `"GO-2022-0969"`, `""`, 1),
		"spaced":           strings.Replace(string(payload), `,"issued"`, `, "issued"`, 1),
		"case variant key": strings.Replace(string(payload), `"entries"`, `"Entries"`, 1),
		"trailing":         string(payload) + " ",
	}
	for name, p := range raw {
		if name != "not json" && name != "entries null" && name != "expires first" && name != "no issue time" && p == string(payload) {
			t.Fatalf("%s: edit did not apply", name)
		}
		env := signRaw(t, RevocationsPayloadType, []byte(p), f.revoke)
		_, err := VerifyRevocations(f.root, env, nil, now)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// Duplicate (artifact, certificate) pairs, too many entries or
	// advisories, and bad fields are refused when signing.
	many := revA
	many.Advisories = slices.Repeat([]string{"GO-1"}, MaxAdvisories+1)
	bigList := make([]Revocation, MaxRevocations+1)
	for i := range bigList {
		bigList[i] = Revocation{ArtifactSHA256: sha(string(rune(i))), Time: t0}
	}
	for name, l := range map[string]RevocationList{
		"duplicate pair":  revList(1, revA, revA),
		"bad artifact":    revList(1, Revocation{ArtifactSHA256: "abc", Time: t0}),
		"many advisories": revList(1, many),
		"too many":        revList(1, bigList...),
		"version 0":       revList(0),
		"long reason":     revList(1, Revocation{ArtifactSHA256: sha("x"), Time: t0, Reason: strings.Repeat("r", MaxFieldLen+1)}),
	} {
		if _, err := SignRevocations(l, f.revoke); !errors.Is(err, ErrMalformed) {
			t.Errorf("SignRevocations %s: %v, want ErrMalformed", name, err)
		}
	}
}
