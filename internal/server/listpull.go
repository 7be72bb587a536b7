package server

// The server mirrors the certifier's revocation list by itself when it
// follows the certifier (--certd): it fetches the newest signed list from
// the certifier and stores it exactly as PUT /v1/revocations does
// (verified under the pinned root, never older than the stored one), at
// start, every revocationsPull, and — before nudging any device — each
// time a feed event calls for mitigation. So a nudged device finds the
// list that revokes its artifact already here, with no operator or pusher
// in between; an integrator may still PUT lists (the newest wins).

import (
	"context"
	"time"
)

// revocationsPull is how often the followed certifier's list is fetched
// besides the fetches that events cause (the certifier re-signs its list
// at half its life, days ahead of expiry).
const revocationsPull = 5 * time.Minute

// PullRevocations fetches the followed certifier's newest signed list and
// stores it if it is newer. It returns whether a new list was stored.
func (s *Server) PullRevocations(ctx context.Context) (bool, error) {
	if s.feed == nil || s.cfg.CertifierRoot == nil {
		return false, nil
	}
	body, err := s.feed.client.Revocations(ctx)
	if err != nil {
		return false, err
	}
	ans, err := s.storeRevocations(ctx, body)
	if err != nil {
		return false, err
	}
	return !ans.Unchanged, nil
}

// pullRevocationsLoop runs PullRevocations at start and every
// revocationsPull until ctx ends; failures are logged and retried at the
// next tick (devices keep the list they have; a stale list is their
// policy's business).
func (s *Server) pullRevocationsLoop(ctx context.Context) {
	t := time.NewTicker(revocationsPull)
	defer t.Stop()
	for {
		if _, err := s.PullRevocations(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("fetching the certifier's revocation list", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
