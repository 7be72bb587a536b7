package server

// NudgeWaiters counts the nudge long polls waiting now (tests).
func (s *Server) NudgeWaiters() int { return s.nudgeWaiters() }
