package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/translog"
)

// TestLogProofMirror: a device fetches, through the OTA server, the
// consistency proof between two checkpoints of the certifier's log that it
// got in two certificate receipts; the proof verifies against both signed
// checkpoints, is served from the cache once the certifier is gone, and
// malformed requests are refused.
func TestLogProofMirror(t *testing.T) {
	ctx := ctxT(t)
	cd, hs, caFile, root, _ := realCertifier(t)
	e := newEnv(t, func(c *server.Config) { c.CertdURL, c.CertdCAFile, c.CertifierRoot = hs.URL, caFile, root })
	key, err := root.PinnedLogVerifierKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	var cps []translog.Checkpoint
	for i, pkg := range []string{"liba", "libb", "libc"} {
		p := dpkgArtifact(t, pkg, fmt.Sprintf("1.%d-1", i))
		data, _ := os.ReadFile(p)
		out, err := cd.Submit(ctx, filepath.Base(p), bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := cd.Bundle(ctx, out.Result.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := translog.VerifyCheckpoint(b.Receipt.Checkpoint, v)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, cp)
	}
	d := e.fleet(t, 1)[0]
	get := func(q string) answer {
		return e.request(t, d.hc, "GET", "/v1/devices/"+d.id+"/log/proof/consistency"+q, "", nil)
	}
	old, cur := cps[0], cps[len(cps)-1]
	if old.Size >= cur.Size {
		t.Fatalf("checkpoint sizes %d and %d", old.Size, cur.Size)
	}
	q := fmt.Sprintf("?old=%d&new=%d", old.Size, cur.Size)
	a := get(q)
	if a.code != http.StatusOK {
		t.Fatalf("proof: %s", a)
	}
	var r translog.ConsistencyResponse
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(r.Proof, cur.Size, cur.Hash, old.Size, old.Hash); err != nil {
		t.Fatalf("the mirrored proof does not verify: %v", err)
	}
	// Cached: answered with the certifier gone; an uncached pair is not.
	hs.Close()
	if a := get(q); a.code != http.StatusOK {
		t.Fatalf("cached proof: %s", a)
	}
	if a := get(fmt.Sprintf("?old=%d&new=%d", cps[1].Size, cur.Size)); a.code != http.StatusBadGateway {
		t.Fatalf("uncached proof without the certifier: %s", a)
	}
	for _, bad := range []string{"", "?old=1", "?old=-1&new=2", "?old=3&new=2", "?old=x&new=2", "?old=1&new=99999999999999999999"} {
		if a := get(bad); a.code != http.StatusBadRequest {
			t.Errorf("%q: %s", bad, a)
		}
	}
	if a := e.request(t, nil, "GET", "/v1/devices/"+d.id+"/log/proof/consistency"+q, "", nil); a.code != http.StatusUnauthorized {
		t.Fatalf("unsigned: %s", a)
	}
}

// TestLogProofMirrorWithoutCertifier: a server that follows no certifier
// says so.
func TestLogProofMirrorWithoutCertifier(t *testing.T) {
	e := newEnv(t, nil)
	d := e.fleet(t, 1)[0]
	a := e.request(t, d.hc, "GET", "/v1/devices/"+d.id+"/log/proof/consistency?old=1&new=2", "", nil)
	if a.code != http.StatusNotFound || !bytes.Contains(a.body, []byte("--certd")) {
		t.Fatalf("%s", a)
	}
}
