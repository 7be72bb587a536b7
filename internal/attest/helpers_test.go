package attest

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/vulnref"
)

var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

type fixture struct {
	root           *certroot.Root
	rootKey        *keys.Key
	certify        []*keys.Key
	revoke, logKey *keys.Key
	certifyIDs     []string
	rootExpires    time.Time
	certifyThresh  int
	alg            string
}

func mustKey(t testing.TB, alg string) *keys.Key {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newFixture makes a root with nCertify certify keys of which threshold
// must sign.
func newFixture(t testing.TB, alg string, nCertify, threshold int) *fixture {
	t.Helper()
	f := &fixture{alg: alg, rootKey: mustKey(t, alg), revoke: mustKey(t, alg), logKey: mustKey(t, keys.Ed25519), certifyThresh: threshold, rootExpires: t0.Add(365 * 24 * time.Hour)}
	var pubs []crypto.PublicKey
	for i := 0; i < nCertify; i++ {
		k := mustKey(t, alg)
		f.certify = append(f.certify, k)
		pubs = append(pubs, k.Public())
		id, _ := k.ID()
		f.certifyIDs = append(f.certifyIDs, id)
	}
	data, err := certroot.Build(1, map[string]certroot.RoleSpec{
		certroot.RoleRoot:    {Keys: []crypto.PublicKey{f.rootKey.Public()}, Threshold: 1},
		certroot.RoleCertify: {Keys: pubs, Threshold: threshold},
		certroot.RoleRevoke:  {Keys: []crypto.PublicKey{f.revoke.Public()}, Threshold: 1},
		certroot.RoleLog:     {Keys: []crypto.PublicKey{f.logKey.Public()}, Threshold: 1},
	}, f.rootExpires, f.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if f.root, err = certroot.Trust(data); err != nil {
		t.Fatal(err)
	}
	return f
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func sha256Sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func digest(s string) string { return "sha256:" + sha(s) }

var (
	artifact = Subject{Name: "fw-1.2.3.tar", SHA256: sha("artifact")}
	sbom     = Subject{Name: "fw-1.2.3.cdx.json", SHA256: sha("sbom")}
)

func certResult() Result {
	return Result{
		Kind:       KindCertificate,
		Verdict:    VerdictPass,
		Verifier:   VerifierInfo{ID: "ztota-verifier", Version: "0.1.0"},
		DB:         DBInfo{ID: digest("db"), Source: "osv Go-2026-08-21.zip"},
		Policy:     PolicyInfo{Digest: digest("policy"), Version: 3},
		Artifact:   ArtifactInfo{Name: artifact.Name, Size: 123456789},
		Components: 42,
		Findings: []vulnref.Finding{{
			ID: "GO-2022-0969", Aliases: []string{"CVE-2022-27664"}, Ecosystem: "Go", Package: "golang.org/x/net",
			Version: "0.0.0-20220520000938-2e3eb7b945c2", Fixed: "0.0.0-20220906165146-f3363e06e74c",
			Severity: vulnref.SeverityHigh, Score: 7.5, Summary: "HTTP/2 <server> & \"hang\"", Exempted: true,
			Justification: "vulnerable_code_not_in_execute_path",
		}},
		Disagreements: []vulnref.Disagreement{{
			Kind:        vulnref.DisagreeVersion,
			Component:   vulnref.Component{Ecosystem: "Go", Name: "golang.org/x/text", Version: "0.3.7", PURL: "pkg:golang/golang.org/x/text@v0.3.7", Location: "bin/app"},
			SBOMVersion: "0.3.8",
		}},
		Issued:     t0,
		ValidUntil: t0.Add(30 * 24 * time.Hour),
	}
}

func (f *fixture) sign(t testing.TB, r Result, signers ...*keys.Key) []byte {
	t.Helper()
	if len(signers) == 0 {
		signers = f.certify[:f.certifyThresh]
	}
	env, err := Sign([]Subject{artifact, sbom}, r, signers...)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return env
}

// signRaw signs an arbitrary payload, for payloads Sign would not make.
func signRaw(t testing.TB, payloadType string, payload []byte, signers ...*keys.Key) []byte {
	t.Helper()
	env, err := signEnvelope(payloadType, payload, signers, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// statementMap returns the statement of a signed certificate as ordered
// JSON, to be edited and re-signed.
func statementMap(t testing.TB, env []byte) *ordered {
	t.Helper()
	var e struct{ Payload []byte }
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	return parseOrdered(t, e.Payload)
}

// envelopeMap returns an envelope as ordered JSON.
func envelopeMap(t testing.TB, env []byte) *ordered {
	t.Helper()
	return parseOrdered(t, env)
}

func sigAt(e *ordered, i int) *ordered { return e.get("signatures").([]any)[i].(*ordered) }

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ordered is a JSON object that keeps its keys' order, so tests can edit
// one field of a canonical document and re-encode it in the same form.
type ordered struct {
	keys []string
	m    map[string]any
}

func (o *ordered) get(k string) any { return o.m[k] }

func (o *ordered) obj(k string) *ordered { return o.m[k].(*ordered) }

func (o *ordered) set(k string, v any) {
	if _, ok := o.m[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.m[k] = v
}

// setBefore adds key k with value v just before key before.
func (o *ordered) setBefore(k string, v any, before string) {
	o.del(k)
	o.m[k] = v
	o.keys = slices.Insert(o.keys, slices.Index(o.keys, before), k)
}

func (o *ordered) del(k string) {
	delete(o.m, k)
	o.keys = slices.DeleteFunc(o.keys, func(s string) bool { return s == k })
}

// rename changes a key in place, keeping its position.
func (o *ordered) rename(from, to string) {
	o.m[to] = o.m[from]
	delete(o.m, from)
	o.keys[slices.Index(o.keys, from)] = to
}

func (o *ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.m[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch d := tok.(type) {
	case json.Delim:
		switch d {
		case '{':
			o := &ordered{m: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				o.set(kt.(string), v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
	}
	return tok, nil
}

// parseOrdered decodes a JSON object keeping key order and number text,
// and checks that it re-encodes to the same bytes.
func parseOrdered(t testing.TB, data []byte) *ordered {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*ordered)
	if again := marshal(t, o); !bytes.Equal(again, data) {
		t.Fatalf("test bug: ordered round trip differs:\n%s\n%s", again, data)
	}
	return o
}
