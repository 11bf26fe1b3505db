package gnet

import (
	"net"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
)

// OnBoot records the engine. gnet calls it before it registers and
// starts its loops: Start waits for the first OnTick (running), which
// comes after (it returned here, and a Shutdown at once raced with the
// loops' registration).
func (s *Server) OnBoot(eng gnetv2.Engine) gnetv2.Action {
	s.eng = eng
	return gnetv2.None
}

// OnOpen starts a new connection's handshake clock, or, for a socket back
// from net/http after an upgrade, makes it the session's.
func (s *Server) OnOpen(gc gnetv2.Conn) ([]byte, gnetv2.Action) {
	if sess, ok := gc.Context().(*session); ok { // Register: back from net/http
		s.files.open.Add(1)
		sess.opened(gc)
		return nil, gnetv2.None
	}
	if !s.files.admit() {
		return busyResponse, gnetv2.Close
	}
	sess := &session{}
	sess.opened(gc)
	gc.SetContext(sess)
	if d := s.ws.Options().HandshakeTimeout; d > 0 {
		s.setDeadline(sess, time.Now().Add(d))
	}
	return nil, gnetv2.None
}

// OnClose ends the WebSocket connection of a closed socket.
func (s *Server) OnClose(gc gnetv2.Conn, err error) gnetv2.Action {
	sess, _ := gc.Context().(*session)
	if sess == nil {
		return gnetv2.None
	}
	s.files.release()
	s.clearDeadline(sess)
	sess.closed()
	if c := sess.c.Load(); c != nil {
		if err == nil {
			err = net.ErrClosed
		}
		c.Gone(err)
	}
	return gnetv2.None
}

// OnTraffic reads what arrived: a request head, then frames.
func (s *Server) OnTraffic(gc gnetv2.Conn) gnetv2.Action {
	sess := gc.Context().(*session)
	switch st := sess.state.Load(); st {
	case stRequest:
		return s.readRequest(gc, sess)
	case stServing, stAnswered: // middleware and the upgrade run off the loop: keep it
		limit := int64(pendingLimit)
		if st == stAnswered { // the peer may send frames now: within the connection's own budget
			limit = s.ws.InputBudget()
		}
		if int64(gc.InboundBuffered()) > limit {
			return gnetv2.Close
		}
	case stOpen:
		sess.feed(gc)
	default: // handed out, or refused: drop
		gc.Discard(-1)
	}
	return gnetv2.None
}

// OnTick marks the engine running (on the first tick) and cuts
// connections past their request-head deadline.
func (s *Server) OnTick() (time.Duration, gnetv2.Action) {
	select {
	case <-s.running:
	default: // the first tick: only the ticker calls OnTick
		close(s.running)
	}
	now := time.Now()
	s.dlMu.Lock()
	for sess, d := range s.deadlines {
		if now.After(d) {
			delete(s.deadlines, sess)
			sess.gc.Close()
		}
	}
	s.dlMu.Unlock()
	hs := s.ws.Options().HandshakeTimeout
	if hs <= 0 {
		return time.Second, gnetv2.None
	}
	return min(max(hs/8, 10*time.Millisecond), time.Second), gnetv2.None
}

func (s *Server) setDeadline(sess *session, t time.Time) {
	s.dlMu.Lock()
	s.deadlines[sess] = t
	s.dlMu.Unlock()
}

func (s *Server) clearDeadline(sess *session) {
	s.dlMu.Lock()
	delete(s.deadlines, sess)
	s.dlMu.Unlock()
}
