package server

// NudgeWaiters counts the nudge long polls waiting now (tests).
func (s *Server) NudgeWaiters() int { return s.nudgeWaiters() }

// NudgeSeq is a device's nudge sequence now (tests).
func (s *Server) NudgeSeq(dev string) int64 {
	n := &s.nudges
	n.mu.Lock()
	defer n.mu.Unlock()
	n.initLocked()
	return n.seqLocked(dev)
}
