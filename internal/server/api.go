package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/diskspace"
	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

// EnrollRequest is the body of POST /v1/enroll (see package enroll). The
// one-time token itself never travels: a request that carries a "token"
// member is from an agent of the old protocol and is refused.
type EnrollRequest struct {
	enroll.Request
	Token string `json:"token,omitempty"`
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req EnrollRequest
	if err := decodeJSON(r, maxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Token != "" {
		s.fail(w, r, errorf(http.StatusBadRequest, "the enrollment token must not be sent: send token_id, nonce and proof (ztota-enroll-v1); upgrade the agent"))
		return
	}
	// A device id must also be one the signed-request headers can carry
	// (devauth allows no '+'), or the device could never authenticate.
	if !tufrepo.ValidIdent(req.DeviceID) || !devauth.ValidDeviceID(req.DeviceID) || !tufrepo.ValidIdent(req.HardwareID) {
		s.fail(w, r, errorf(http.StatusBadRequest, "device_id must be 1-128 of [A-Za-z0-9._-] and hardware_id 1-128 of [A-Za-z0-9._+-], starting with a letter or digit"))
		return
	}
	if err := keys.CheckEd25519Public(req.PublicKey); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "public_key must be a base64 ed25519 public key (32 bytes) of a point of large order: %v", err))
		return
	}
	if err := req.CheckShape(); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	tok, err := s.st.EnrollTokenByID(r.Context(), req.TokenID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, errorf(http.StatusUnauthorized, "%v", err))
			return
		}
		s.fail(w, r, err)
		return
	}
	if err := req.Verify(string(tok.Secret)); err != nil {
		s.fail(w, r, errorf(http.StatusUnauthorized, "%v", err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var dev store.Device
	var again bool
	err = s.tx(r.Context(), func(tx *sql.Tx) error {
		var err error
		dev, again, err = store.EnrollTx(r.Context(), tx, req.TokenID, store.Device{ID: req.DeviceID, HardwareID: req.HardwareID, PublicKey: req.PublicKey}, s.cfg.Now())
		if err == nil && again && !dev.Decommissioned.IsZero() {
			// The repeated request of a device revoked since (or its
			// replay): no 201, which would say it is enrolled.
			return errorf(http.StatusForbidden, "%v: %s may not enroll again", errDecommissioned, dev.ID)
		}
		if err != nil || again {
			return err
		}
		// An empty director repository, so the device can refresh at once.
		return s.assignTx(r.Context(), tx, dev, nil, "")
	})
	if err != nil {
		switch {
		case errors.Is(err, store.ErrTokenUsed):
			s.fail(w, r, errorf(http.StatusConflict, "%v: ask the operator for a new token", err))
		case errors.Is(err, store.ErrNotFound):
			s.fail(w, r, errorf(http.StatusUnauthorized, "%v", err))
		case errors.Is(err, store.ErrDuplicate):
			// The id is taken (the token stays unused): say by what.
			if d, derr := s.st.Device(r.Context(), req.DeviceID); derr == nil && !d.Decommissioned.IsZero() {
				s.fail(w, r, errorf(http.StatusForbidden, "%v: %s may not enroll again", errDecommissioned, req.DeviceID))
			} else {
				s.fail(w, r, errorf(http.StatusConflict, "device %s is already enrolled (with another token); the token was not used", req.DeviceID))
			}
		default:
			s.fail(w, r, err)
		}
		return
	}
	if again {
		s.log.Info("device enrollment repeated (the device did not get the first answer)", "device", dev.ID)
	} else {
		s.log.Info("device enrolled", "device", dev.ID, "hardware", dev.HardwareID, "group", dev.Group)
	}
	writeJSON(w, http.StatusCreated, req.Answer(string(tok.Secret), dev.Group))
}

// ReportsResponse answers a batch of reports.
type ReportsResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

func (s *Server) handleReports(w http.ResponseWriter, r *http.Request) {
	dev := r.Context().Value(deviceCtxKey{}).(string)
	body := r.Context().Value(deviceBodyKey{}).([]byte)
	batch, err := report.ParseBatch(body, maxReportsPerBatch)
	if err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	pub, err := s.lookupDeviceKey(r.Context(), dev)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var rows []store.Report
	for i, sr := range batch {
		rep, err := report.Verify(pub, sr)
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "report %d: %v (nothing from this batch was stored)", i, err))
			return
		}
		if rep.DeviceID != dev {
			s.fail(w, r, errorf(http.StatusForbidden, "report %d is for device %s, not %s", i, rep.DeviceID, dev))
			return
		}
		rows = append(rows, store.Report{
			ID: rep.ID, DeviceID: rep.DeviceID, Seq: rep.Seq, Time: rep.Time, State: string(rep.State),
			Target: rep.Target, Version: rep.Version, Progress: rep.Progress, Detail: rep.Detail,
			Module: rep.Module, Mode: rep.Mode, Advisories: rep.Advisories,
			Payload: sr.Payload, Sig: sr.Sig,
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	var added []store.Report
	err = s.tx(r.Context(), func(tx *sql.Tx) error {
		if err := s.flagReportTimesTx(r.Context(), tx, dev, rows, now); err != nil {
			return err
		}
		var err error
		if added, err = store.AddReportsTx(r.Context(), tx, rows, now); err != nil {
			return err
		}
		for _, rep := range added {
			if err := s.ingestReportTx(r.Context(), tx, dev, rep, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ReportsResponse{Accepted: len(added), Duplicates: len(rows) - len(added)})
}

func (s *Server) handlePutArtifact(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if r.ContentLength < 0 {
		s.fail(w, r, errorf(http.StatusLengthRequired, "send Content-Length with the artifact"))
		return
	}
	if r.ContentLength > s.cfg.MaxArtifactSize {
		s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "artifact of %d bytes is above the server's limit of %d", r.ContentLength, s.cfg.MaxArtifactSize))
		return
	}
	// Refuse early, before a byte is written, when the disk cannot take
	// the artifact and a margin for the database.
	if err := diskspace.Check(s.cfg.FreeSpace, s.cfg.DataDir, uint64(r.ContentLength)+64<<20); err != nil {
		if errors.Is(err, diskspace.ErrInsufficient) {
			s.fail(w, r, errorf(http.StatusInsufficientStorage, "%v", err))
			return
		}
		s.fail(w, r, err)
		return
	}
	if err := s.st.PutArtifact(r.Context(), r.Body, r.ContentLength, sha); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrIncomplete) {
			s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
			return
		}
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"sha256": sha})
}

func (s *Server) handleGetImageTargets(w http.ResponseWriter, r *http.Request) {
	m, err := s.st.LatestMeta(r.Context(), repoImage, tufrepo.Targets)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(m.Data)
}

// handlePostImageTargets takes new image targets metadata signed offline by
// the integrator. Every target must already have its artifact uploaded with
// matching length and hash, and valid ztota custom metadata.
func (s *Server) handlePostImageTargets(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTargetsBody+1))
	if err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "reading body: %v", err))
		return
	}
	if len(body) > maxTargetsBody {
		s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "targets metadata larger than %d bytes", maxTargetsBody))
		return
	}
	if err := checkDuplicateKeys(body); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	t, err := tufrepo.Parse[metadata.TargetsType](body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := r.Context()
	rootMeta, err := s.st.LatestMeta(ctx, repoImage, tufrepo.Root)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	root, err := tufrepo.Parse[metadata.RootType](rootMeta.Data)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := tufrepo.Verify(root, tufrepo.Targets, t); err != nil {
		s.fail(w, r, err)
		return
	}
	cur, err := s.st.LatestMeta(ctx, repoImage, tufrepo.Targets)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if t.Signed.Version != cur.Version+1 {
		s.fail(w, r, errorf(http.StatusConflict, "targets version %d must be %d: fetch the latest and sign again", t.Signed.Version, cur.Version+1))
		return
	}
	if !t.Signed.Expires.After(s.cfg.Now()) {
		s.fail(w, r, errorf(http.StatusBadRequest, "targets metadata expires %s, already past", t.Signed.Expires))
		return
	}
	var rels []store.Release
	paths := make([]string, 0, len(t.Signed.Targets))
	for p := range t.Signed.Targets {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		// The same name rules as the agent and the report format: a
		// name a device could not sign into its reports would wedge
		// every deployment of it. The whole document is refused.
		if err := tufrepo.CheckTargetPath(p); err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "%v (nothing from this targets document was stored)", err))
			return
		}
		tf := t.Signed.Targets[p]
		tf.Path = p
		im, err := tufrepo.ParseImageMeta(tf)
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "target %s: %v", p, err))
			return
		}
		// The path names the release the custom metadata describes, so
		// "name@version" and the path never select different artifacts.
		if err := tufrepo.CheckReleasePath(p, im); err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
			return
		}
		sha, err := tufrepo.SHA256(tf)
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
			return
		}
		hexsha := hex.EncodeToString(sha)
		if fi, err := statArtifact(s.st.ArtifactPath(hexsha)); err != nil || fi != tf.Length {
			s.fail(w, r, errorf(http.StatusBadRequest, "target %s: artifact %s of %d bytes not uploaded: PUT /v1/artifacts/%s first", p, hexsha, tf.Length, hexsha))
			return
		}
		rels = append(rels, store.Release{Target: p, Name: im.Name, Version: im.Version, ReleaseCounter: im.ReleaseCounter,
			HardwareIDs: im.HardwareIDs, Module: im.Module, SHA256: hexsha, Length: tf.Length, Backup: im.Backup})
	}
	if err := checkBackups(rels); err != nil {
		s.fail(w, r, err)
		return
	}
	// A running deployment's target must stay signed: without it every
	// device of the deployment refuses its director (the repositories
	// disagree) and the deployment waits for ever.
	deps, err := s.st.Deployments(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	listed := make(map[string]bool, len(paths))
	for _, p := range paths {
		listed[p] = true
	}
	for _, d := range deps {
		if d.Status == store.DeployRunning && !listed[d.Target] {
			s.fail(w, r, errorf(http.StatusConflict, "target %s is deployed by running deployment %s: keep it in the targets, or halt the deployment first (ztota deploy halt %s)", d.Target, d.ID, d.ID))
			return
		}
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for _, rel := range rels {
			if err := store.PutReleaseTx(ctx, tx, rel); err != nil {
				return err
			}
		}
		return s.publishTx(ctx, tx, repoImage, t.Signed.Version, body, t.Signed.Expires, s.keys.ImageSnapshot, s.keys.ImageTimestamp, true)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("image targets published", "version", t.Signed.Version, "targets", len(paths))
	s.afterPublish()
	writeJSON(w, http.StatusCreated, map[string]any{"version": t.Signed.Version, "targets": paths})
}

func (s *Server) handleRootRotation(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("repo")
	if repo != repoImage && repo != repoDirector {
		s.fail(w, r, errorf(http.StatusNotFound, "repository must be image or director"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTargetsBody+1))
	if err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "reading body: %v", err))
		return
	}
	if len(body) > maxTargetsBody {
		s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "root metadata larger than %d bytes", maxTargetsBody))
		return
	}
	if err := checkDuplicateKeys(body); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	next, err := tufrepo.Parse[metadata.RootType](body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.st.LatestMeta(r.Context(), repo, tufrepo.Root)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	trusted, err := tufrepo.Parse[metadata.RootType](cur.Data)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if bytes.Equal(body, cur.Data) {
		// Sent again (a retried publish): already the current root.
		writeJSON(w, http.StatusOK, map[string]any{"repo": repo, "version": next.Signed.Version})
		return
	}
	if err := tufrepo.VerifyRootUpdate(trusted, next); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	if repo == repoImage {
		if err := s.targetsFollowRoot(r.Context(), next); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	changes, err := s.newOnlineKeys(repo, next)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	saved := s.keys
	err = s.tx(r.Context(), func(tx *sql.Tx) error {
		if err := store.PutMetaTx(r.Context(), tx, store.Meta{Repo: repo, Role: tufrepo.Root, Version: next.Signed.Version, Data: body, Expires: next.Signed.Expires}); err != nil {
			return err
		}
		return s.adoptKeysTx(r.Context(), tx, repo, changes)
	})
	if err != nil {
		s.keys = saved
		s.fail(w, r, err)
		return
	}
	if err := s.saveKeys(changes, next.Signed.Version); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, c := range changes {
		s.log.Warn("online key replaced; metadata re-signed", "repo", repo, "role", c.r.role)
	}
	s.log.Info("root rotated", "repo", repo, "version", next.Signed.Version)
	writeJSON(w, http.StatusCreated, map[string]any{"repo": repo, "version": next.Signed.Version})
}

func (s *Server) handleEnrollToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Group      string `json:"group"`
		TTLSeconds int64  `json:"ttl_seconds"`
	}
	if err := decodeJSON(r, maxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Group != "" && !tufrepo.ValidIdent(req.Group) {
		s.fail(w, r, errorf(http.StatusBadRequest, "group must be 1-128 of [A-Za-z0-9._+-]"))
		return
	}
	const maxEnrollTTL = 30 * 24 * 3600
	if req.TTLSeconds < 0 || req.TTLSeconds > maxEnrollTTL {
		// Never a silent 24 h instead of what the operator asked.
		s.fail(w, r, errorf(http.StatusBadRequest, "ttl_seconds must be between 1 and %d (30 days; 0 for the default of 24 h)", maxEnrollTTL))
		return
	}
	if req.TTLSeconds == 0 {
		req.TTLSeconds = 24 * 3600
	}
	tok := NewToken()
	exp := s.cfg.Now().Add(time.Duration(req.TTLSeconds) * time.Second)
	if err := s.st.AddEnrollToken(r.Context(), tok, req.Group, exp); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "group": req.Group, "expires": exp.UTC()})
}

func (s *Server) handleListReleases(w http.ResponseWriter, r *http.Request) {
	rels, err := s.st.Releases(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rels)
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if _, err := s.st.Device(r.Context(), r.PathValue("device")); err != nil {
		s.fail(w, r, err) // 404 for a device never enrolled, not an empty history
		return
	}
	h, err := s.st.History(r.Context(), r.PathValue("device"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if h == nil {
		h = []store.Report{}
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) handleListDeployments(w http.ResponseWriter, r *http.Request) {
	ds, err := s.st.Deployments(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

// DeploymentView is a deployment with its devices.
type DeploymentView struct {
	store.Deployment
	Devices []store.DeploymentDevice `json:"devices"`
	// Gate says, in the answer to a new deployment, what the release
	// gate checked (certificate and revocation list) or that this server
	// has no certifier root and does not gate releases.
	Gate string `json:"gate,omitempty"`
}

func (s *Server) handleGetDeployment(w http.ResponseWriter, r *http.Request) {
	v, err := s.deploymentView(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deploymentView(ctx context.Context, id string) (DeploymentView, error) {
	d, err := s.st.Deployment(ctx, id)
	if err != nil {
		return DeploymentView{}, err
	}
	devs, err := s.st.DeploymentDevices(ctx, id)
	if err != nil {
		return DeploymentView{}, err
	}
	return DeploymentView{Deployment: d, Devices: devs}, nil
}
