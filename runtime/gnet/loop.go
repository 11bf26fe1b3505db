package gnet

import (
	"net"

	gnetv2 "github.com/panjf2000/gnet/v2"
)

// OnOpen runs when an upgraded connection joined a loop (Enroll).
func (s *Server) OnOpen(gc gnetv2.Conn) ([]byte, gnetv2.Action) {
	sess, _ := gc.Context().(*session)
	if sess == nil {
		return nil, gnetv2.Close
	}
	sess.opened(gc)
	return nil, gnetv2.None
}

// OnClose ends the WebSocket connection of a closed socket.
func (s *Server) OnClose(gc gnetv2.Conn, err error) gnetv2.Action {
	sess, _ := gc.Context().(*session)
	if sess == nil {
		return gnetv2.None
	}
	sess.closed()
	if c := sess.c.Load(); c != nil {
		if err == nil {
			err = net.ErrClosed
		}
		c.Gone(err)
	}
	return gnetv2.None
}

// OnTraffic feeds what arrived to the connection.
func (s *Server) OnTraffic(gc gnetv2.Conn) gnetv2.Action {
	sess := gc.Context().(*session)
	if sess.c.Load() == nil { // the upgrade is finishing: keep it for the first feed
		return gnetv2.None
	}
	sess.feed(gc)
	return gnetv2.None
}
