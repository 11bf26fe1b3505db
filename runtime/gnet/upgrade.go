package gnet

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
)

// ServeHTTP serves the router: its pages, and its WebSocket routes, whose
// connections then move to an event loop.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ws.Serve(w, r, s.upgrade)
}

// upgrade checks the handshake, takes the socket from net/http, hands it
// to an event loop and runs h.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, h api.Handler) {
	sess := &session{s: s}
	c := s.ws.Upgrade(w, r, func() (conn.Transport, netip.AddrPort, error) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		nc = conn.Unwrap(nc)
		nc.SetDeadline(time.Time{})
		// Bytes the client sent right behind the request are the first
		// frames; the loop reads what comes after.
		if n := brw.Reader.Buffered(); n > 0 {
			p, _ := brw.Reader.Peek(n)
			sess.in = append([]byte(nil), p...)
		}
		tc, ok := nc.(*net.TCPConn)
		if !ok {
			nc.Close()
			return nil, netip.AddrPort{}, errors.New("wsmatrix: gnet: only TCP connections go to an event loop")
		}
		sess.remote = conn.AddrPort(tc.RemoteAddr())
		if _, err := s.cli.EnrollContext(tc, sess); err != nil { // closes tc: the loop holds a duplicate
			return nil, netip.AddrPort{}, err
		}
		return sess, sess.remote, nil
	})
	if c == nil {
		return
	}
	sess.c.Store(c)
	sess.gc.Wake(nil) // feed what came with the request and since
	// A fresh goroutine, with a small stack, rather than net/http's, whose
	// stack grew through parsing and middleware: a blocking handler keeps
	// its goroutine for the life of the connection.
	go c.Run(h)
}
