package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
)

func TestRoundTrip(t *testing.T) {
	for _, alg := range []string{keys.Ed25519, keys.ECDSAP256} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg, 1, 1)
			want := certResult()
			env := f.sign(t, want)
			c, err := Verify(f.root, env, now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(c.Result, want) {
				t.Fatalf("result differs:\n got %+v\nwant %+v", c.Result, want)
			}
			if !reflect.DeepEqual(c.Subjects, []Subject{artifact, sbom}) {
				t.Fatalf("subjects %+v", c.Subjects)
			}
			if c.Digest != DigestOf(env) || !bytes.Equal(c.Envelope, env) {
				t.Fatal("digest or envelope bytes differ")
			}
			if !slices.Equal(c.Signers, f.certifyIDs) || !slices.Equal(f.root.KeyIDs(certroot.RoleCertify), f.certifyIDs) {
				t.Fatalf("signers %v, root certify keys %v", c.Signers, f.root.KeyIDs(certroot.RoleCertify))
			}
			if !c.Covers(artifact.SHA256) || !c.Covers("sha256:"+strings.ToUpper(artifact.SHA256)) {
				t.Fatal("certificate does not cover its artifact")
			}
			if c.Covers(sbom.SHA256) || c.Covers(sha("another artifact")) || c.Covers("") {
				t.Fatal("certificate covers something other than its artifact")
			}
			// The envelope is DSSE over an in-toto Statement v1 whose
			// signature key id is the TUF key id of the root.
			e := envelopeMap(t, env)
			if e.get("payloadType") != PayloadType {
				t.Fatalf("payloadType %v", e.get("payloadType"))
			}
			if id := sigAt(e, 0).get("keyid"); id != f.certifyIDs[0] {
				t.Fatalf("keyid %v, want %s", id, f.certifyIDs[0])
			}
			st := statementMap(t, env)
			if st.get("_type") != "https://in-toto.io/Statement/v1" || st.get("predicateType") != PredicateType {
				t.Fatalf("statement header %v %v", st.get("_type"), st.get("predicateType"))
			}
			subj := st.get("subject").([]any)[0].(*ordered)
			if subj.get("name") != artifact.Name || subj.obj("digest").get("sha256") != artifact.SHA256 {
				t.Fatalf("subject %v", subj)
			}

			// A rejection verifies, with verdict fail.
			rej := certResult()
			rej.Kind, rej.Verdict, rej.DB, rej.Policy = KindRejection, VerdictFail, DBInfo{}, PolicyInfo{}
			rc, err := Verify(f.root, f.sign(t, rej), now)
			if err != nil || rc.Result.Verdict != VerdictFail || rc.Result.Kind != KindRejection {
				t.Fatalf("rejection: %v", err)
			}
			// A re-inspection names the earlier certificate.
			re := certResult()
			re.Kind, re.Verdict, re.Previous = KindReinspection, VerdictFail, c.Digest
			ric, err := Verify(f.root, f.sign(t, re), now)
			if err != nil || ric.Result.Previous != c.Digest {
				t.Fatalf("re-inspection: %v", err)
			}
			// Only the artifact is required; no findings is fine.
			bare := certResult()
			bare.Findings, bare.Disagreements = nil, nil
			benv, err := Sign([]Subject{artifact}, bare, f.certify[0])
			if err != nil {
				t.Fatal(err)
			}
			if bc, err := Verify(f.root, benv, now); err != nil || len(bc.Subjects) != 1 || bc.Result.Findings != nil {
				t.Fatalf("bare certificate: %v", err)
			}
		})
	}
}

func TestSignConvertsTimesToUTC(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	r := certResult()
	zone := time.FixedZone("X", 3*3600)
	r.Issued, r.ValidUntil = r.Issued.In(zone), r.ValidUntil.In(zone)
	c, err := Verify(f.root, f.sign(t, r), now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Result.Issued.Location() != time.UTC || !c.Result.Issued.Equal(t0) {
		t.Fatalf("issued %v", c.Result.Issued)
	}
}

func TestWrongKeysAndRoleConfusion(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	r := certResult()
	foreign := mustKey(t, keys.Ed25519)
	for name, signers := range map[string][]*keys.Key{
		"foreign key":           {foreign},
		"revoke key":            {f.revoke},
		"log key":               {f.logKey},
		"root key":              {f.rootKey},
		"certify + foreign key": {f.certify[0], foreign},
		"certify + revoke key":  {f.certify[0], f.revoke},
	} {
		env := f.sign(t, r, signers...)
		if _, err := Verify(f.root, env, now); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
	// A revocation list signed by the certify key is refused too.
	l := RevocationList{Version: 1, Issued: t0, Expires: t0.Add(48 * time.Hour)}
	env, err := SignRevocations(l, f.certify[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyRevocations(f.root, env, nil, now); !errors.Is(err, ErrSignature) {
		t.Errorf("revocations by the certify key: %v, want ErrSignature", err)
	}
	// A certificate payload in a revocation envelope (signed by the
	// revoke key) is refused by type before anything else.
	cenv := f.sign(t, r)
	if _, err := VerifyRevocations(f.root, cenv, nil, now); !errors.Is(err, ErrWrongType) {
		t.Errorf("certificate as revocation list: %v, want ErrWrongType", err)
	}
}

func TestThreshold(t *testing.T) {
	f := newFixture(t, keys.ECDSAP256, 3, 2)
	r := certResult()
	if _, err := Verify(f.root, f.sign(t, r, f.certify[0]), now); !errors.Is(err, ErrSignature) {
		t.Fatalf("one of threshold two: %v, want ErrSignature", err)
	}
	for _, set := range [][]*keys.Key{f.certify[:2], f.certify[1:], f.certify} {
		c, err := Verify(f.root, f.sign(t, r, set...), now)
		if err != nil {
			t.Fatalf("%d signatures: %v", len(set), err)
		}
		if len(c.Signers) != len(set) {
			t.Fatalf("signers %v", c.Signers)
		}
	}
	// Two signatures, one replaced by a signature over other content:
	// only one valid signature remains, below the threshold.
	env := envelopeMap(t, f.sign(t, r, f.certify[:2]...))
	other := sigAt(envelopeMap(t, f.sign(t, certResult(), f.certify[2])), 0)
	sigAt(env, 0).set("sig", other.get("sig"))
	if _, err := Verify(f.root, marshal(t, env), now); !errors.Is(err, ErrSignature) {
		t.Fatalf("one bad of two: %v, want ErrSignature", err)
	}
	// Three signatures with one bad: threshold met but a bad signature
	// is still refused.
	env3 := envelopeMap(t, f.sign(t, r, f.certify...))
	sigAt(env3, 2).set("sig", base64.StdEncoding.EncodeToString(make([]byte, 70)))
	if _, err := Verify(f.root, marshal(t, env3), now); !errors.Is(err, ErrSignature) {
		t.Fatalf("two good and one bad: %v, want ErrSignature", err)
	}
	// Signing twice with the same key is refused by Sign.
	if _, err := Sign([]Subject{artifact}, r, f.certify[0], f.certify[0]); err == nil {
		t.Fatal("Sign accepted a key twice")
	}
}

func TestTampered(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	env := f.sign(t, certResult())

	// Change the verdict in the payload, keep the signature.
	st := statementMap(t, env)
	st.obj("predicate").set("components", 41)
	e := envelopeMap(t, env)
	e.set("payload", base64.StdEncoding.EncodeToString(marshal(t, st)))
	if _, err := Verify(f.root, marshal(t, e), now); !errors.Is(err, ErrSignature) {
		t.Errorf("tampered payload: %v, want ErrSignature", err)
	}
	// Flip one bit of the signature.
	e = envelopeMap(t, env)
	s := sigAt(e, 0)
	raw, _ := base64.StdEncoding.DecodeString(s.get("sig").(string))
	raw[5] ^= 1
	s.set("sig", base64.StdEncoding.EncodeToString(raw))
	if _, err := Verify(f.root, marshal(t, e), now); !errors.Is(err, ErrSignature) {
		t.Errorf("tampered signature: %v, want ErrSignature", err)
	}
	// Change the payload type: both the type check and PAE refuse it.
	e = envelopeMap(t, env)
	e.set("payloadType", "application/json")
	if _, err := Verify(f.root, marshal(t, e), now); !errors.Is(err, ErrWrongType) {
		t.Errorf("payloadType: %v, want ErrWrongType", err)
	}
	// Every single-byte change to the envelope is refused.
	for i := 0; i < len(env); i += 7 {
		b := bytes.Clone(env)
		b[i] ^= 0x04
		if _, err := Verify(f.root, b, now); err == nil {
			t.Fatalf("byte %d changed: verified", i)
		}
	}
}

func TestWrongStatementTypes(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	st := statementMap(t, f.sign(t, certResult()))
	for name, edit := range map[string]func(m *ordered){
		"predicateType": func(m *ordered) { m.set("predicateType", "https://example.invalid/other-predicate/v1") },
		"legacy _type":  func(m *ordered) { m.set("_type", "https://in-toto.io/Statement/v0.1") },
		"other _type":   func(m *ordered) { m.set("_type", "https://example.invalid/Statement/v1") },
	} {
		m := statementMap(t, f.sign(t, certResult()))
		edit(m)
		env := signRaw(t, PayloadType, marshal(t, m), f.certify[0])
		if _, err := Verify(f.root, env, now); !errors.Is(err, ErrWrongType) {
			t.Errorf("%s: %v, want ErrWrongType", name, err)
		}
	}
	// A statement in a revocation-typed envelope.
	env := signRaw(t, RevocationsPayloadType, marshal(t, st), f.certify[0])
	if _, err := Verify(f.root, env, now); !errors.Is(err, ErrWrongType) {
		t.Errorf("revocations payload type: %v, want ErrWrongType", err)
	}
}

func TestValidityWindow(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	r := certResult()
	env := f.sign(t, r)
	if _, err := Verify(f.root, env, r.ValidUntil); err != nil {
		t.Fatalf("at ValidUntil: %v", err)
	}
	_, err := Verify(f.root, env, r.ValidUntil.Add(time.Second))
	if !errors.Is(err, ErrExpired) || errors.Is(err, ErrSignature) || errors.Is(err, certroot.ErrExpired) {
		t.Fatalf("after ValidUntil: %v, want ErrExpired only", err)
	}
	if _, err := Verify(f.root, env, r.Issued.Add(-MaxClockSkew)); err != nil {
		t.Fatalf("within clock skew: %v", err)
	}
	if _, err := Verify(f.root, env, r.Issued.Add(-MaxClockSkew-time.Second)); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("issued in the future: %v, want ErrNotYetValid", err)
	}
	// An expired trusted root refuses everything, with the root's error.
	_, err = Verify(f.root, env, f.rootExpires.Add(time.Second))
	if !errors.Is(err, certroot.ErrExpired) || errors.Is(err, ErrExpired) {
		t.Fatalf("expired root: %v, want certroot.ErrExpired", err)
	}
	if _, err := Verify(nil, env, now); err == nil {
		t.Fatal("nil root accepted")
	}
}

// urlSafeName returns an artifact name that makes the statement's
// standard base64 differ from its URL-safe base64.
func urlSafeName(t *testing.T, f *fixture) []byte {
	for i := 0; i < 64; i++ {
		r := certResult()
		name := "fw" + strings.Repeat("?", i) + ".tar"
		r.Artifact.Name = name
		env, err := Sign([]Subject{{Name: name, SHA256: artifact.SHA256}}, r, f.certify[0])
		if err != nil {
			t.Fatal(err)
		}
		e := envelopeMap(t, env)
		p, _ := base64.StdEncoding.DecodeString(e.get("payload").(string))
		if u := base64.URLEncoding.EncodeToString(p); u != e.get("payload") {
			e.set("payload", u)
			return marshal(t, e)
		}
	}
	t.Fatal("no name gives a URL-safe base64 difference")
	return nil
}

func TestMalformedEnvelope(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 2, 1)
	env := f.sign(t, certResult(), f.certify[0])
	env2 := f.sign(t, certResult(), f.certify...)
	edit := func(src []byte, fn func(e *ordered)) []byte {
		e := envelopeMap(t, src)
		fn(e)
		return marshal(t, e)
	}
	sigs := func(e *ordered) []any { return e.get("signatures").([]any) }
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, env, "", " ")
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":                 {nil, ErrMalformed},
		"not json":              {[]byte("DSSE"), ErrMalformed},
		"array":                 {[]byte("[]"), ErrMalformed},
		"null":                  {[]byte("null"), ErrMalformed},
		"trailing data":         {append(bytes.Clone(env), ' '), ErrMalformed},
		"second value":          {append(bytes.Clone(env), env...), ErrMalformed},
		"indented":              {pretty.Bytes(), ErrMalformed},
		"key order":             {edit(env, func(e *ordered) { e.keys[0], e.keys[1] = e.keys[1], e.keys[0] }), ErrMalformed},
		"unknown field":         {edit(env, func(e *ordered) { e.set("extra", 1) }), ErrMalformed},
		"case variant key":      {edit(env, func(e *ordered) { e.rename("payloadType", "PayloadType") }), ErrMalformed},
		"duplicate key":         {bytes.Replace(env, []byte(`{"payloadType"`), []byte(`{"payload":"e30=","payloadType"`), 1), ErrMalformed},
		"payloadType number":    {edit(env, func(e *ordered) { e.set("payloadType", 7) }), ErrMalformed},
		"payloadType null":      {edit(env, func(e *ordered) { e.set("payloadType", nil) }), ErrMalformed},
		"payload number":        {edit(env, func(e *ordered) { e.set("payload", 7) }), ErrMalformed},
		"payload not base64":    {edit(env, func(e *ordered) { e.set("payload", "!!!!") }), ErrMalformed},
		"payload missing":       {edit(env, func(e *ordered) { e.del("payload") }), ErrMalformed},
		"payload bad padding":   {edit(env, func(e *ordered) { e.set("payload", strings.TrimRight(e.get("payload").(string), "=")+"=") }), ErrMalformed},
		"payload with newline":  {edit(env, func(e *ordered) { p := e.get("payload").(string); e.set("payload", p[:8]+"\n"+p[8:]) }), ErrMalformed},
		"payload URL-safe":      {urlSafeName(t, f), ErrMalformed},
		"signatures missing":    {edit(env, func(e *ordered) { e.del("signatures") }), ErrMalformed},
		"signatures null":       {edit(env, func(e *ordered) { e.set("signatures", nil) }), ErrSignature},
		"signatures empty":      {edit(env, func(e *ordered) { e.set("signatures", []any{}) }), ErrSignature},
		"signatures object":     {edit(env, func(e *ordered) { e.set("signatures", map[string]any{}) }), ErrMalformed},
		"signature string":      {edit(env, func(e *ordered) { e.set("signatures", []any{"x"}) }), ErrMalformed},
		"keyid missing":         {edit(env, func(e *ordered) { sigAt(e, 0).del("keyid") }), ErrMalformed},
		"keyid empty":           {edit(env, func(e *ordered) { sigAt(e, 0).set("keyid", "") }), ErrSignature},
		"keyid number":          {edit(env, func(e *ordered) { sigAt(e, 0).set("keyid", 1) }), ErrMalformed},
		"keyid unknown":         {edit(env, func(e *ordered) { sigAt(e, 0).set("keyid", strings.Repeat("0", 64)) }), ErrSignature},
		"keyid other certify":   {edit(env, func(e *ordered) { sigAt(e, 0).set("keyid", f.certifyIDs[1]) }), ErrSignature},
		"sig not base64":        {edit(env, func(e *ordered) { sigAt(e, 0).set("sig", "not base64!") }), ErrMalformed},
		"sig empty":             {edit(env, func(e *ordered) { sigAt(e, 0).set("sig", "") }), ErrSignature},
		"sig truncated":         {edit(env, func(e *ordered) { sigAt(e, 0).set("sig", sigAt(e, 0).get("sig").(string)[:40]) }), ErrSignature},
		"sig field unknown":     {edit(env, func(e *ordered) { sigAt(e, 0).set("cert", "") }), ErrMalformed},
		"too many signatures":   {edit(env, func(e *ordered) { e.set("signatures", slices.Repeat(sigs(e), MaxSignatures+1)) }), ErrSignature},
		"duplicate signature":   {edit(env, func(e *ordered) { e.set("signatures", slices.Repeat(sigs(e), 2)) }), ErrMalformed},
		"signatures not sorted": {edit(env2, func(e *ordered) { s := sigs(e); s[0], s[1] = s[1], s[0] }), ErrMalformed},
		"oversized":             {append(bytes.Repeat([]byte(" "), MaxEnvelopeSize), env...), ErrTooLarge},
	}
	for name, c := range cases {
		_, err := Verify(f.root, c.data, now)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := Verify(f.root, env2, now); err != nil {
		t.Fatalf("two-signature envelope: %v", err)
	}
	if _, err := Verify(f.root, edit(env, func(*ordered) {}), now); err != nil {
		t.Fatalf("unedited envelope through the test's editor: %v", err)
	}
	// Every truncation is refused.
	for i := 0; i < len(env); i++ {
		if _, err := Verify(f.root, env[:i], now); !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut to %d bytes: %v, want ErrMalformed", i, err)
		}
	}
}

func newObj(kv ...any) *ordered {
	o := &ordered{m: map[string]any{}}
	for i := 0; i < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func TestMalformedStatement(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	good := f.sign(t, certResult())
	goodPayload, _ := base64.StdEncoding.DecodeString(envelopeMap(t, good).get("payload").(string))
	pred := func(m *ordered) *ordered { return m.obj("predicate") }
	subj := func(m *ordered, i int) *ordered { return m.get("subject").([]any)[i].(*ordered) }
	finding := func(m *ordered) *ordered { return pred(m).get("findings").([]any)[0].(*ordered) }
	edits := map[string]func(m *ordered){
		"no subject":          func(m *ordered) { m.set("subject", []any{}) },
		"subject null":        func(m *ordered) { m.set("subject", nil) },
		"subject not list":    func(m *ordered) { m.set("subject", "x") },
		"subject name empty":  func(m *ordered) { subj(m, 0).set("name", "") },
		"subject names equal": func(m *ordered) { subj(m, 1).set("name", subj(m, 0).get("name")) },
		"digest not hex":      func(m *ordered) { subj(m, 0).set("digest", newObj("sha256", strings.Repeat("z", 64))) },
		"digest short":        func(m *ordered) { subj(m, 0).set("digest", newObj("sha256", "abcd")) },
		"digest upper case":   func(m *ordered) { subj(m, 0).set("digest", newObj("sha256", strings.ToUpper(artifact.SHA256))) },
		"digest sha512 only":  func(m *ordered) { subj(m, 0).set("digest", newObj("sha512", strings.Repeat("ab", 64))) },
		"digest two algorithms": func(m *ordered) {
			subj(m, 0).set("digest", newObj("sha1", strings.Repeat("ab", 20), "sha256", artifact.SHA256))
		},
		"digest number":          func(m *ordered) { subj(m, 0).set("digest", newObj("sha256", 1)) },
		"digest empty":           func(m *ordered) { subj(m, 0).set("digest", newObj()) },
		"subject unknown field":  func(m *ordered) { subj(m, 0).set("uri", "https://x") },
		"unknown top field":      func(m *ordered) { m.set("extra", true) },
		"no predicate":           func(m *ordered) { m.del("predicate") },
		"predicate null":         func(m *ordered) { m.set("predicate", nil) },
		"predicate not object":   func(m *ordered) { m.set("predicate", "pass") },
		"predicate unknown":      func(m *ordered) { pred(m).set("signed_by", "me") },
		"predicate case variant": func(m *ordered) { pred(m).rename("verdict", "Verdict") },
		"kind unknown":           func(m *ordered) { pred(m).set("kind", "exemption") },
		"certificate fails":      func(m *ordered) { pred(m).set("verdict", VerdictFail) },
		"rejection passes":       func(m *ordered) { pred(m).set("kind", KindRejection) },
		"verdict unknown":        func(m *ordered) { pred(m).set("verdict", "maybe") },
		"previous not a digest":  func(m *ordered) { pred(m).setBefore("previous", "sha1:abc", "issued") },
		"reinspection no prev":   func(m *ordered) { pred(m).set("kind", KindReinspection) },
		"verifier id empty":      func(m *ordered) { pred(m).obj("verifier").set("id", "") },
		"verifier not object":    func(m *ordered) { pred(m).set("verifier", "v") },
		"db id bad":              func(m *ordered) { pred(m).obj("db").set("id", "md5:abc") },
		"db id empty on cert":    func(m *ordered) { pred(m).obj("db").set("id", "") },
		"policy digest bad":      func(m *ordered) { pred(m).obj("policy").set("digest", "sha256:XYZ") },
		"policy version float":   func(m *ordered) { pred(m).obj("policy").set("version", 1.5) },
		"policy version huge":    func(m *ordered) { pred(m).obj("policy").set("version", json.Number("1e400")) },
		"artifact other name":    func(m *ordered) { pred(m).obj("artifact").set("name", "other.tar") },
		"artifact size string":   func(m *ordered) { pred(m).obj("artifact").set("size", "12") },
		"artifact size negative": func(m *ordered) { pred(m).obj("artifact").set("size", -1) },
		"artifact size 2^60":     func(m *ordered) { pred(m).obj("artifact").set("size", int64(1)<<60) },
		"components negative":    func(m *ordered) { pred(m).set("components", -3) },
		"findings not list":      func(m *ordered) { pred(m).set("findings", newObj()) },
		"finding id empty":       func(m *ordered) { finding(m).set("id", "") },
		"finding unknown field":  func(m *ordered) { finding(m).set("epss", 0.1) },
		"finding score string":   func(m *ordered) { finding(m).set("score", "7.5") },
		"finding score 7.50":     func(m *ordered) { finding(m).set("score", json.Number("7.50")) },
		"disagreement bad":       func(m *ordered) { pred(m).set("disagreements", []any{1}) },
		"issued not time":        func(m *ordered) { pred(m).set("issued", "yesterday") },
		"issued missing":         func(m *ordered) { pred(m).del("issued") },
		"valid until before":     func(m *ordered) { pred(m).set("valid_until", t0.Add(-time.Hour).Format(time.RFC3339)) },
		"issued other zone":      func(m *ordered) { pred(m).set("issued", t0.In(time.FixedZone("", 3600)).Format(time.RFC3339)) },
		"issued fraction":        func(m *ordered) { pred(m).set("issued", "2026-03-01T12:00:00.000Z") },
	}
	for name, fn := range edits {
		m := statementMap(t, good)
		fn(m)
		p := marshal(t, m)
		if bytes.Equal(p, goodPayload) {
			t.Fatalf("%s: edit did not apply", name)
		}
		env := signRaw(t, PayloadType, p, f.certify[0])
		_, err := Verify(f.root, env, now)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	raw := map[string][]byte{
		"not json":      []byte("certificate"),
		"empty":         {},
		"array":         []byte("[]"),
		"null":          []byte("null"),
		"truncated":     goodPayload[:len(goodPayload)-1],
		"trailing":      append(bytes.Clone(goodPayload), '\n'),
		"spaced":        bytes.Replace(goodPayload, []byte(`":`), []byte(`": `), 1),
		"duplicate key": bytes.Replace(goodPayload, []byte(`"kind":"certificate"`), []byte(`"kind":"rejection","kind":"certificate"`), 1),
		"escaped key":   bytes.Replace(goodPayload, []byte(`"kind"`), []byte(`"\u006bind"`), 1),
		"escaped value": bytes.Replace(goodPayload, []byte(`"pass"`), []byte(`"\u0070ass"`), 1),
	}
	for name, p := range raw {
		if len(p) > 0 && bytes.Equal(p, goodPayload) {
			t.Fatalf("%s: edit did not apply", name)
		}
		env := signRaw(t, PayloadType, p, f.certify[0])
		_, err := Verify(f.root, env, now)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("raw %s: %v, want ErrMalformed", name, err)
		}
	}
	// The unedited statement through the test's editor, re-signed raw, is
	// fine: the cases above fail for their edit, not for the editing.
	if _, err := Verify(f.root, signRaw(t, PayloadType, marshal(t, statementMap(t, good)), f.certify[0]), now); err != nil {
		t.Fatalf("raw good payload: %v", err)
	}
}

func TestSignRefusesBadInput(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	k := f.certify[0]
	bad := map[string]func(r *Result) []Subject{
		"no subjects": func(r *Result) []Subject { return nil },
		"bad sha": func(r *Result) []Subject {
			return []Subject{{Name: artifact.Name, SHA256: "sha256:" + artifact.SHA256}}
		},
		"too many":      func(r *Result) []Subject { return slices.Repeat([]Subject{artifact}, MaxSubjects+1) },
		"name mismatch": func(r *Result) []Subject { r.Artifact.Name = "x"; return []Subject{artifact} },
		"no issue time": func(r *Result) []Subject { r.Issued = time.Time{}; return []Subject{artifact} },
		"huge name": func(r *Result) []Subject {
			r.Verifier.ID = strings.Repeat("v", MaxFieldLen+1)
			return []Subject{artifact}
		},
		"too many finds": func(r *Result) []Subject {
			r.Findings = slices.Repeat(r.Findings, MaxFindings+1)
			return []Subject{artifact}
		},
		"size too large": func(r *Result) []Subject { r.Artifact.Size = MaxArtifactSize + 1; return []Subject{artifact} },
		"reject prev": func(r *Result) []Subject {
			r.Kind, r.Verdict, r.Previous = KindRejection, VerdictFail, digest("x")
			return []Subject{artifact}
		},
		"reinspect p bad": func(r *Result) []Subject { r.Kind, r.Previous = KindReinspection, "abc"; return []Subject{artifact} },
	}
	for name, fn := range bad {
		r := certResult()
		s := fn(&r)
		if _, err := Sign(s, r, k); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	nan := certResult()
	nan.Findings[0].Score = float64NaN()
	if _, err := Sign([]Subject{artifact}, nan, k); err == nil {
		t.Error("NaN score accepted")
	}
	if _, err := Sign([]Subject{artifact}, certResult()); err == nil {
		t.Error("Sign without a key accepted")
	}
	if _, err := NewSignerVerifier(nil); err == nil {
		t.Error("nil key accepted")
	}
}

func float64NaN() float64 { z := 0.0; return z / z }

func TestECDSALowS(t *testing.T) {
	k := mustKey(t, keys.ECDSAP256)
	sv, err := NewSignerVerifier(k)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := k.ID()
	v, err := NewVerifier(id, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	half := new(big.Int).Rsh(n, 1)
	ctx := context.Background()
	msg := []byte("ztota")
	for i := 0; i < 64; i++ {
		sig, err := sv.Sign(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		var s ecdsaSig
		if _, err := asn1.Unmarshal(sig, &s); err != nil {
			t.Fatal(err)
		}
		if s.S.Cmp(half) > 0 {
			t.Fatal("Sign produced a high S")
		}
		if err := v.Verify(ctx, msg, sig); err != nil {
			t.Fatalf("verify: %v", err)
		}
		// The mirrored signature (r, n-s) is valid ECDSA but not canonical.
		hi, _ := asn1.Marshal(ecdsaSig{R: s.R, S: new(big.Int).Sub(n, s.S)})
		if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), sha256Sum(msg), hi) {
			t.Fatal("test bug: mirrored signature is not valid ECDSA")
		}
		if err := v.Verify(ctx, msg, hi); err == nil {
			t.Fatal("high-S signature accepted")
		}
		if err := v.Verify(ctx, []byte("ztotb"), sig); err == nil {
			t.Fatal("signature over another message accepted")
		}
	}
	if _, err := NewVerifier(strings.Repeat("0", 64), k.Public()); err == nil {
		t.Fatal("NewVerifier accepted a wrong key id")
	}
}

// TestRotationEndToEnd: Init, rotate twice, a client holding root 1
// follows the chain to 3 and then trusts the new certify key, not the
// removed one.
func TestRotationEndToEnd(t *testing.T) {
	dir := t.TempDir()
	if err := certroot.Init(dir, certroot.Options{RootKeys: 3, RootThreshold: 2, Now: t0}); err != nil {
		t.Fatal(err)
	}
	r1b, err := certroot.LoadCurrent(dir)
	if err != nil {
		t.Fatal(err)
	}
	on1, err := certroot.LoadOnline(dir)
	if err != nil {
		t.Fatal(err)
	}
	r2b, err := certroot.Rotate(dir, certroot.RotateOptions{Roles: []string{certroot.RoleCertify}, Alg: keys.ECDSAP256, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	r3b, err := certroot.Rotate(dir, certroot.RotateOptions{RootKeys: 2, RootThreshold: 2, Roles: []string{certroot.RoleRevoke}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	on3, err := certroot.LoadOnline(dir)
	if err != nil {
		t.Fatal(err)
	}

	client, err := certroot.Trust(r1b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Update(r3b, now); !errors.Is(err, certroot.ErrVersion) {
		t.Fatalf("skip to 3: %v", err)
	}
	if client, err = client.Update(r2b, now); err != nil {
		t.Fatal(err)
	}
	if client, err = client.Update(r3b, now); err != nil {
		t.Fatal(err)
	}
	if client.Version() != 3 {
		t.Fatalf("client at version %d", client.Version())
	}

	oldEnv, err := Sign([]Subject{artifact}, certResult(), on1.Certify)
	if err != nil {
		t.Fatal(err)
	}
	newEnv, err := Sign([]Subject{artifact}, certResult(), on3.Certify)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(client, newEnv, now); err != nil {
		t.Fatalf("certificate by the new certify key: %v", err)
	}
	if _, err := Verify(client, oldEnv, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("certificate by the removed certify key: %v, want ErrSignature", err)
	}
	if _, err := Verify(r1b, oldEnv, now); err != nil {
		t.Fatalf("old certificate under root 1: %v", err)
	}
	l := RevocationList{Version: 1, Issued: t0, Expires: t0.Add(24 * time.Hour)}
	oldRev, _ := SignRevocations(l, on1.Revoke)
	newRev, _ := SignRevocations(l, on3.Revoke)
	if _, err := VerifyRevocations(client, newRev, nil, now); err != nil {
		t.Fatalf("revocations by the new revoke key: %v", err)
	}
	if _, err := VerifyRevocations(client, oldRev, nil, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("revocations by the removed revoke key: %v, want ErrSignature", err)
	}
}
