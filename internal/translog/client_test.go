package translog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/translog"
)

// serve mounts the log's handler under /log/ and returns a client for it.
func serve(t *testing.T, h http.Handler, k testKey) *translog.Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/log/", http.StripPrefix("/log", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &translog.Client{BaseURL: srv.URL + "/log/", HTTP: srv.Client(), Verifier: k.verifier}
}

func TestClientReadsAndVerifiesTheLog(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	c := serve(t, l.Handler(), k)

	empty, _, err := c.Checkpoint(ctx)
	if err != nil || empty.Size != 0 {
		t.Fatalf("empty log: %+v %v", empty, err)
	}
	var recs []rec
	for i := 0; i < 9; i++ {
		recs = append(recs, mkRec("cl", i))
	}
	appendAll(t, ctx, l, db, recs[:4], 1)
	cp4, _, err := c.Update(ctx, empty)
	if err != nil || cp4.Size != 4 {
		t.Fatalf("update from empty: %+v %v", cp4, err)
	}
	appendAll(t, ctx, l, db, recs[4:], 2)
	cp9, signed9, err := c.Update(ctx, cp4)
	if err != nil || cp9.Size != 9 {
		t.Fatalf("update 4→9: %+v %v", cp9, err)
	}
	if _, err := translog.VerifyCheckpoint(signed9, k.verifier); err != nil {
		t.Fatal(err)
	}
	same, _, err := c.Update(ctx, cp9)
	if err != nil || same != cp9 {
		t.Fatalf("update without change: %+v %v", same, err)
	}
	for i, r := range recs {
		e, err := c.Entry(ctx, int64(i))
		if err != nil || e.Kind != r.kind || !bytes.Equal(e.Data, r.data) {
			t.Fatalf("entry %d: %+v %v", i, e, err)
		}
		if err := c.VerifyEntry(ctx, cp9, int64(i), e.Kind, e.Data); err != nil {
			t.Fatalf("verify entry %d: %v", i, err)
		}
		if i < 4 {
			if err := c.VerifyEntry(ctx, cp4, int64(i), e.Kind, e.Data); err != nil {
				t.Fatalf("verify entry %d at size 4: %v", i, err)
			}
		}
	}
	if err := c.VerifyEntry(ctx, cp9, 2, recs[3].kind, recs[3].data); !errors.Is(err, translog.ErrBadProof) {
		t.Errorf("entry at the wrong index: %v", err)
	}
	if _, err := c.Entry(ctx, 9); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("entry beyond the log: %v", err)
	}
	if _, err := c.Entry(ctx, -1); err == nil {
		t.Error("negative index accepted")
	}
	if _, err := c.InclusionProof(ctx, 3, 3); err == nil {
		t.Error("index outside the tree accepted")
	}
	if _, err := c.ConsistencyProof(ctx, 4, 3); err == nil {
		t.Error("old > new accepted")
	}
	if _, err := c.ConsistencyProof(ctx, 4, 10); err == nil || !strings.Contains(err.Error(), "beyond the log") {
		t.Errorf("size beyond the log: %v", err)
	}

	other := newKey(t, testOrigin)
	wrong := *c
	wrong.Verifier = other.verifier
	if _, _, err := wrong.Checkpoint(ctx); !errors.Is(err, translog.ErrBadCheckpoint) {
		t.Errorf("checkpoint under another key: %v", err)
	}
	for _, base := range []string{"", "ftp://x/log", "::bad", "/relative"} {
		bad := translog.Client{BaseURL: base, Verifier: k.verifier}
		if _, _, err := bad.Checkpoint(ctx); err == nil {
			t.Errorf("base URL %q accepted", base)
		}
	}
}

func TestClientUpdateDetectsMisbehaviour(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	la, lb := forkedLogs(t, k, 4, 3, 4) // A: 7 entries, B: 8, sharing the first 4
	cpA, _ := signedAt(t, ctx, la, k)
	clientB := serve(t, lb.Handler(), k)

	check := func(name string, prev translog.Checkpoint, c *translog.Client, reason string) {
		t.Helper()
		_, _, err := c.Update(ctx, prev)
		var me *translog.MisbehaviourError
		if !errors.As(err, &me) || !errors.Is(err, translog.ErrMisbehaviour) {
			t.Fatalf("%s: %v, want a MisbehaviourError", name, err)
		}
		if !strings.HasPrefix(err.Error(), "log misbehaviour: ") || !strings.Contains(err.Error(), reason) {
			t.Fatalf("%s: message %q, want %q", name, err, reason)
		}
		// The evidence is signed by the log.
		if got, err := translog.VerifyCheckpoint(me.NewSigned, k.verifier); err != nil || got != me.New || me.Old != prev {
			t.Fatalf("%s: evidence %+v: %v", name, me, err)
		}
	}
	check("fork", cpA, clientB, "does not extend the tree of size 7")

	// Same size, different history.
	la2, lb2 := forkedLogs(t, k, 2, 3, 3)
	cpA2, _ := signedAt(t, ctx, la2, k)
	check("same size", cpA2, serve(t, lb2.Handler(), k), "two different root hashes signed for size 5")

	// The log shrank: a witness that saw A at 7 is served a log of 4.
	short, _ := forkedLogs(t, k, 4, 0, 0)
	check("shrank", cpA, serve(t, short.Handler(), k), "the tree shrank from 7 to 4 entries")

	// An honest witness that saw the common prefix accepts B.
	h4, err := lb.TreeHash(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := clientB.Update(ctx, translog.Checkpoint{Origin: testOrigin, Size: 4, Hash: h4})
	if err != nil || cp.Size != 8 {
		t.Fatalf("honest update: %+v %v", cp, err)
	}
	// A checkpoint of another log is a configuration error, not misbehaviour.
	_, _, err = clientB.Update(ctx, translog.Checkpoint{Origin: "other.example/log", Size: 4, Hash: h4})
	if err == nil || errors.Is(err, translog.ErrMisbehaviour) {
		t.Fatalf("other origin: %v", err)
	}
}

// TestClientDistrustsTheServer serves the client tampered or oversized
// answers.
func TestClientDistrustsTheServer(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	var recs []rec
	for i := 0; i < 6; i++ {
		recs = append(recs, mkRec("m", i))
	}
	appendAll(t, ctx, l, db, recs[:3], 3)
	cp3, _ := signedAt(t, ctx, l, k)
	appendAll(t, ctx, l, db, recs[3:], 3)
	cp6, _ := signedAt(t, ctx, l, k)
	real := l.Handler()

	var modeV atomic.Value
	modeV.Store("")
	setMode := func(m string) { modeV.Store(m) }
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := modeV.Load().(string)
		switch mode {
		case "huge checkpoint":
			w.Write(bytes.Repeat([]byte("x"), translog.MaxCheckpointSize+1))
			return
		case "hang":
			select {
			case <-r.Context().Done():
			case <-block:
			}
			return
		case "server error":
			http.Error(w, strings.Repeat("boom ", 10000), 500)
			return
		}
		rec := httptest.NewRecorder()
		real.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		switch {
		case mode == "flip proof" && strings.HasPrefix(r.URL.Path, "/proof/"):
			var m map[string]any
			json.Unmarshal(body, &m)
			p := m["proof"].([]any)
			var hh tlog.Hash
			hh[0] = 1
			p[0] = hh.String()
			body, _ = json.Marshal(m)
		case mode == "other index" && r.URL.Path == "/proof/inclusion":
			body = bytes.Replace(body, []byte(`"index":1`), []byte(`"index":2`), 1)
		case mode == "unknown field" && r.URL.Path == "/proof/inclusion":
			body = bytes.Replace(body, []byte(`{`), []byte(`{"extra":1,`), 1)
		case mode == "too many hashes" && r.URL.Path == "/proof/inclusion":
			hs := make([]tlog.Hash, translog.MaxProofHashes+1)
			body, _ = json.Marshal(translog.InclusionResponse{Index: 1, Size: 6, Proof: hs})
		case mode == "trailing data":
			body = append(body, []byte(`{}`)...)
		case mode == "other entry" && strings.HasPrefix(r.URL.Path, "/entries/"):
			body = bytes.Replace(body, []byte(`"index":1`), []byte(`"index":2`), 1)
		}
		for key, v := range rec.Header() {
			w.Header()[key] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
	c := serve(t, h, k)

	tests := []struct {
		mode string
		call func() error
		want string
	}{
		{"huge checkpoint", func() error { _, _, err := c.Checkpoint(ctx); return err }, "larger than"},
		{"server error", func() error { _, _, err := c.Checkpoint(ctx); return err }, "500"},
		{"flip proof", func() error { return c.VerifyEntry(ctx, cp6, 1, recs[1].kind, recs[1].data) }, "bad proof"},
		{"flip proof", func() error { _, _, err := c.Update(ctx, cp3); return err }, "log misbehaviour: "},
		{"other index", func() error { return c.VerifyEntry(ctx, cp6, 1, recs[1].kind, recs[1].data) }, "asked for the proof of 1 in 6, got 2 in 6"},
		{"unknown field", func() error { return c.VerifyEntry(ctx, cp6, 1, recs[1].kind, recs[1].data) }, "unknown field"},
		{"too many hashes", func() error { return c.VerifyEntry(ctx, cp6, 1, recs[1].kind, recs[1].data) }, "more than"},
		{"trailing data", func() error { _, err := c.Entry(ctx, 1); return err }, "trailing data"},
		{"other entry", func() error { _, err := c.Entry(ctx, 1); return err }, "asked for entry 1, got 2"},
	}
	for _, tc := range tests {
		setMode(tc.mode)
		err := tc.call()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.mode, err, tc.want)
		}
		if err != nil && len(err.Error()) > 2000 {
			t.Errorf("%s: error message of %d bytes is not bounded", tc.mode, len(err.Error()))
		}
	}

	setMode("hang")
	quick := *c
	quick.Timeout = 200 * time.Millisecond
	if _, _, err := quick.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("hanging server: %v, want a deadline error", err)
	}
	setMode("")
	if err := c.VerifyEntry(ctx, cp6, 1, recs[1].kind, recs[1].data); err != nil {
		t.Fatalf("honest server again: %v", err)
	}
}
