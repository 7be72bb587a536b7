package translog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/strictjson"
)

// Client limits.
const (
	// DefaultClientTimeout bounds one request when Client.Timeout is zero.
	DefaultClientTimeout = 30 * time.Second
	// maxProofResponse bounds a proof response: MaxProofHashes base64
	// hashes with JSON punctuation and the echoed numbers.
	maxProofResponse = MaxProofHashes*48 + 512
	// maxEntryResponse bounds an entry response: MaxEntrySize in base64
	// with room for the other fields.
	maxEntryResponse = (MaxEntrySize+2)/3*4 + 1024
	// maxErrorResponse bounds the error message read from a 4xx or 5xx.
	maxErrorResponse = 4 << 10
)

// ErrMisbehaviour is wrapped by MisbehaviourError.
var ErrMisbehaviour = errors.New("log misbehaviour")

// MisbehaviourError reports that the log signed a checkpoint that does not
// extend a checkpoint it signed before: it shrank, forked or cannot prove
// consistency. Old and New are both signed by the log key, so together
// (with the signed New note) they are evidence to publish.
type MisbehaviourError struct {
	Old, New  Checkpoint
	NewSigned []byte
	Reason    string
}

func (e *MisbehaviourError) Error() string {
	return fmt.Sprintf("log misbehaviour: %s (old size %d root %s, new size %d root %s)",
		e.Reason, e.Old.Size, e.Old.Hash, e.New.Size, e.New.Hash)
}

// Unwrap makes errors.Is(err, ErrMisbehaviour) true.
func (e *MisbehaviourError) Unwrap() error { return ErrMisbehaviour }

// Client reads a log served by Log.Handler and verifies what it reads.
type Client struct {
	// BaseURL is where the handler is mounted, e.g.
	// "https://certd.example/log". Required.
	BaseURL string
	// HTTP is the client used; nil means one with DefaultClientTimeout.
	HTTP *http.Client
	// Verifier checks checkpoint signatures. Required.
	Verifier note.Verifier
	// Timeout bounds each request; zero means DefaultClientTimeout.
	Timeout time.Duration
}

// get fetches path from the log with a bounded body and time.
func (c *Client) get(ctx context.Context, path string, query url.Values, max int64) ([]byte, error) {
	if c.BaseURL == "" {
		return nil, errors.New("translog client: no BaseURL")
	}
	base, err := url.Parse(strings.TrimSuffix(c.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("translog client: BaseURL %q is not an http(s) URL", c.BaseURL)
	}
	u := base.JoinPath(path)
	u.RawQuery = query.Encode()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("translog client: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("translog client: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorResponse))
		var e ErrorResponse
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, fmt.Errorf("translog client: GET %s: %s: %.500s", u, resp.Status, msg)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("translog client: GET %s: reading body: %w", u, err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("translog client: GET %s: response larger than %d bytes", u, max)
	}
	return body, nil
}

// decodeStrict decodes one JSON object with no unknown fields, duplicate
// (case-folded) keys or trailing data.
func decodeStrict(body []byte, v any) error {
	if err := strictjson.DecodeUnique(body, v, 16); err != nil {
		return fmt.Errorf("malformed response: %w", err)
	}
	return nil
}

// Checkpoint fetches and verifies the log's current checkpoint. It returns
// the checkpoint and the signed note.
func (c *Client) Checkpoint(ctx context.Context) (Checkpoint, []byte, error) {
	signed, err := c.get(ctx, "checkpoint", nil, MaxCheckpointSize)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	cp, err := VerifyCheckpoint(signed, c.Verifier)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("translog client: %w", err)
	}
	return cp, signed, nil
}

// Entry fetches the entry at index. The entry is not verified by itself:
// check it with VerifyEntry against a checkpoint.
func (c *Client) Entry(ctx context.Context, index int64) (Entry, error) {
	if index < 0 {
		return Entry{}, fmt.Errorf("translog client: negative entry index %d", index)
	}
	body, err := c.get(ctx, "entries/"+strconv.FormatInt(index, 10), nil, maxEntryResponse)
	if err != nil {
		return Entry{}, err
	}
	var r EntryResponse
	if err := decodeStrict(body, &r); err != nil {
		return Entry{}, fmt.Errorf("translog client: entry %d: %w", index, err)
	}
	if r.Index != index {
		return Entry{}, fmt.Errorf("translog client: asked for entry %d, got %d", index, r.Index)
	}
	if err := ValidKind(r.Kind); err != nil {
		return Entry{}, fmt.Errorf("translog client: entry %d: %w", index, err)
	}
	if len(r.Data) > MaxEntrySize {
		return Entry{}, fmt.Errorf("translog client: entry %d: %d bytes of data, more than %d", index, len(r.Data), MaxEntrySize)
	}
	return Entry{Index: r.Index, Kind: r.Kind, Data: r.Data, Time: r.Time}, nil
}

// InclusionProof fetches the proof that entry index is in the tree of size
// treeSize. It is not verified: see VerifyEntry.
func (c *Client) InclusionProof(ctx context.Context, index, treeSize int64) (tlog.RecordProof, error) {
	if index < 0 || index >= treeSize {
		return nil, fmt.Errorf("translog client: index %d is not in a tree of size %d", index, treeSize)
	}
	q := url.Values{"index": {strconv.FormatInt(index, 10)}, "size": {strconv.FormatInt(treeSize, 10)}}
	body, err := c.get(ctx, "proof/inclusion", q, maxProofResponse)
	if err != nil {
		return nil, err
	}
	var r InclusionResponse
	if err := decodeStrict(body, &r); err != nil {
		return nil, fmt.Errorf("translog client: inclusion proof: %w", err)
	}
	if r.Index != index || r.Size != treeSize {
		return nil, fmt.Errorf("translog client: asked for the proof of %d in %d, got %d in %d", index, treeSize, r.Index, r.Size)
	}
	if len(r.Proof) > MaxProofHashes {
		return nil, fmt.Errorf("translog client: inclusion proof has %d hashes, more than %d", len(r.Proof), MaxProofHashes)
	}
	return r.Proof, nil
}

// ConsistencyProof fetches the proof that the tree of size newSize extends
// the tree of size oldSize. It is not verified: see Update.
func (c *Client) ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("translog client: old size %d must be between 0 and new size %d", oldSize, newSize)
	}
	q := url.Values{"old": {strconv.FormatInt(oldSize, 10)}, "new": {strconv.FormatInt(newSize, 10)}}
	body, err := c.get(ctx, "proof/consistency", q, maxProofResponse)
	if err != nil {
		return nil, err
	}
	var r ConsistencyResponse
	if err := decodeStrict(body, &r); err != nil {
		return nil, fmt.Errorf("translog client: consistency proof: %w", err)
	}
	if r.Old != oldSize || r.New != newSize {
		return nil, fmt.Errorf("translog client: asked for the proof %d→%d, got %d→%d", oldSize, newSize, r.Old, r.New)
	}
	if len(r.Proof) > MaxProofHashes {
		return nil, fmt.Errorf("translog client: consistency proof has %d hashes, more than %d", len(r.Proof), MaxProofHashes)
	}
	return r.Proof, nil
}

// VerifyEntry checks that the entry (kind, data) is at index in the tree
// of the verified checkpoint cp, fetching the inclusion proof from the log.
func (c *Client) VerifyEntry(ctx context.Context, cp Checkpoint, index int64, kind string, data []byte) error {
	p, err := c.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return err
	}
	if err := VerifyInclusion(cp, index, kind, data, p); err != nil {
		return fmt.Errorf("translog client: %w", err)
	}
	return nil
}

// Update is a witness step: it fetches the log's current checkpoint and
// checks that it extends prev, a checkpoint this witness verified before.
// It returns the new checkpoint and its signed note, which the caller keeps
// as the next prev. A log that shrank, signed two roots for one size, or
// cannot prove the new tree extends the old one yields a
// *MisbehaviourError ("log misbehaviour: ..."); network and format
// problems yield ordinary errors.
func (c *Client) Update(ctx context.Context, prev Checkpoint) (Checkpoint, []byte, error) {
	cur, signed, err := c.Checkpoint(ctx)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if prev.Origin != cur.Origin {
		return Checkpoint{}, nil, fmt.Errorf("translog client: previous checkpoint is of log %q, this log is %q", prev.Origin, cur.Origin)
	}
	bad := func(reason string) error {
		return &MisbehaviourError{Old: prev, New: cur, NewSigned: signed, Reason: reason}
	}
	switch {
	case cur.Size < prev.Size:
		return Checkpoint{}, nil, bad(fmt.Sprintf("the tree shrank from %d to %d entries", prev.Size, cur.Size))
	case cur.Size == prev.Size:
		if cur.Hash != prev.Hash {
			return Checkpoint{}, nil, bad(fmt.Sprintf("two different root hashes signed for size %d", cur.Size))
		}
		return cur, signed, nil
	}
	p, err := c.ConsistencyProof(ctx, prev.Size, cur.Size)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if err := VerifyConsistency(prev, cur, p); err != nil {
		return Checkpoint{}, nil, bad(fmt.Sprintf("the tree of size %d does not extend the tree of size %d: %v", cur.Size, prev.Size, err))
	}
	return cur, signed, nil
}
