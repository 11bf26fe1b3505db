package gnet

import (
	"net"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
)

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnetv2.Engine) gnetv2.Action {
	s.eng = eng
	close(s.booted)
	return gnetv2.None
}

// OnOpen starts the handshake clock of a new connection.
func (s *Server) OnOpen(gc gnetv2.Conn) ([]byte, gnetv2.Action) {
	if s.closing.Load() {
		return nil, gnetv2.Close
	}
	sess := newSession(s, gc)
	gc.SetContext(sess)
	if s.opts.HandshakeTimeout > 0 {
		s.setDeadline(sess, time.Now().Add(s.opts.HandshakeTimeout))
	}
	return nil, gnetv2.None
}

// OnClose ends the WebSocket connection of a closed socket.
func (s *Server) OnClose(gc gnetv2.Conn, err error) gnetv2.Action {
	sess, _ := gc.Context().(*session)
	if sess == nil {
		return gnetv2.None
	}
	s.clearDeadline(sess)
	sess.closed()
	if sess.state.Swap(stClosed) == stOpen {
		if err == nil {
			err = net.ErrClosed
		}
		sess.c.Load().Gone(err)
	}
	return gnetv2.None
}

// OnTraffic parses what arrived: the upgrade request, then frames.
func (s *Server) OnTraffic(gc gnetv2.Conn) gnetv2.Action {
	sess := gc.Context().(*session)
	switch sess.state.Load() {
	case stRequest:
		return s.readRequest(gc, sess)
	case stServing:
		if gc.InboundBuffered() > pendingLimit {
			return gnetv2.Close
		}
	case stOpen:
		sess.feed(gc)
	default: // closed or lingering: drop input
		gc.Discard(-1)
	}
	return gnetv2.None
}

// OnTick cuts connections past their handshake or linger deadline.
func (s *Server) OnTick() (time.Duration, gnetv2.Action) {
	now := time.Now()
	s.dlMu.Lock()
	for sess, d := range s.deadlines {
		if now.After(d) {
			delete(s.deadlines, sess)
			sess.gc.Close()
		}
	}
	s.dlMu.Unlock()
	return tickEvery(s.opts.HandshakeTimeout), gnetv2.None
}

func tickEvery(hs time.Duration) time.Duration {
	if hs <= 0 {
		return time.Second
	}
	return min(max(hs/8, 10*time.Millisecond), time.Second)
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
