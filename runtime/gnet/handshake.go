package gnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
)

// pendingLimit bounds what a client may send behind its upgrade request
// before the answer.
const pendingLimit = 64 << 10

// readRequest reads a new connection's first request head in the loop. An
// upgrade to a WebSocket route stays: middleware and the upgrade run on a
// goroutine, then its frames are parsed in this loop. Anything else —
// a page, a body, a malformed or oversized head — goes out of the loop to
// net/http, which answers it as it answers stdhttp's.
func (s *Server) readRequest(gc gnetv2.Conn, sess *session) gnetv2.Action {
	buf, _ := gc.Peek(-1)
	r, n, err := conn.ReadRequest(buf, s.ws.Options().MaxHeaderBytes)
	if err == nil && r == nil {
		return gnetv2.None // not all of the head yet: the deadline bounds the wait
	}
	if s.ws.Closing() {
		// The loops accept until the engine stops, after the drain: what
		// comes meanwhile, a page or an upgrade, is told so (net/http,
		// which serves pages, is already shut down).
		w := conn.NewResponse()
		w.Header().Set("Retry-After", "1")
		http.Error(w, conn.ShuttingDown, http.StatusServiceUnavailable)
		s.clearDeadline(sess)
		gc.Discard(-1)
		gc.Write(w.AppendHTTP(nil))
		return gnetv2.Close
	}
	if err != nil || !api.IsUpgrade(r) || s.ws.Route(r) != conn.WebSocketRoute {
		return s.handOut(gc, sess)
	}
	gc.Discard(n) // n > 0: a request head
	s.clearDeadline(sess)
	remote := conn.AddrPort(gc.RemoteAddr()) // a copy: gnet's address is only valid in the loop
	r.RemoteAddr = remote.String()
	sess.state.Store(stServing)
	go s.serveUpgrade(sess, r, remote)
	return gnetv2.None
}

// handOut gives the connection to net/http: a duplicate of its descriptor
// goes to Go's poller with the bytes the loop read, and the loop lets go.
func (s *Server) handOut(gc gnetv2.Conn, sess *session) gnetv2.Action {
	s.clearDeadline(sess)
	buf, _ := gc.Peek(-1)
	read := bytes.Clone(buf)
	fd, err := gc.Dup()
	if err != nil {
		s.ws.Options().Logger.Warn("wsmatrix: gnet: cannot hand a connection to net/http", "err", err)
		return gnetv2.Close
	}
	f := os.NewFile(uintptr(fd), "gnet")
	nc, err := net.FileConn(f) // a descriptor of its own
	f.Close()
	if err != nil {
		s.ws.Options().Logger.Warn("wsmatrix: gnet: cannot hand a connection to net/http", "err", err)
		return gnetv2.Close
	}
	sess.state.Store(stHandedOut)
	s.files.open.Add(1) // nc's descriptor, until prefixConn lets it go
	s.plain.push(&prefixConn{Conn: nc, prefix: read, files: s.files})
	return gnetv2.Close // gnet closes its descriptor; the socket lives on in nc
}

// serveUpgrade runs the router for an upgrade parsed in the loop:
// middleware, then the upgrade, or the refusal written back.
func (s *Server) serveUpgrade(sess *session, r *http.Request, remote netip.AddrPort) {
	w := conn.NewResponse()
	upgraded := false
	s.ws.Serve(w, r, func(w http.ResponseWriter, r *http.Request, h api.Handler) {
		c := s.ws.Upgrade(w, r, func() (conn.Transport, netip.AddrPort, error) {
			upgraded = true
			sess.state.Store(stAnswered)
			return sess, remote, nil
		})
		if c != nil {
			if testHookBeforeRun != nil {
				testHookBeforeRun()
			}
			s.run(sess, c, h)
		}
	})
	if upgraded {
		return
	}
	sess.state.Store(stRefused)
	sess.Write(w.AppendHTTP(nil))
	sess.Close()
}

// testHookBeforeRun runs between an upgrade's 101 and the hand-over of
// its connection to the loop, to test what arrives in between.
var testHookBeforeRun func()

// ServeHTTP serves the connections handed out to net/http: pages, and
// upgrades that come on a connection that served pages first.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ws.Serve(w, r, s.upgradeFromHTTP)
}

// upgradeFromHTTP takes an upgraded socket back from net/http into a loop.
func (s *Server) upgradeFromHTTP(w http.ResponseWriter, r *http.Request, h api.Handler) {
	sess := &session{}
	sess.state.Store(stServing)
	c := s.ws.Upgrade(w, r, func() (conn.Transport, netip.AddrPort, error) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		nc = conn.Unwrap(nc)
		nc.SetDeadline(time.Time{})
		// What net/http read ahead, then what the loop had read and
		// net/http had not, are the first frames.
		if n := brw.Reader.Buffered(); n > 0 {
			p, _ := brw.Reader.Peek(n)
			sess.hold(append(sess.held(), p...))
		}
		if pc, ok := nc.(*prefixConn); ok {
			sess.hold(append(sess.held(), pc.rest()...))
			pc.let() // Register closes its descriptor; the loop's duplicate is counted in OnOpen
			nc = pc.Conn
		}
		tc, ok := nc.(*net.TCPConn)
		if !ok {
			nc.Close()
			return nil, netip.AddrPort{}, fmt.Errorf("wsmatrix: gnet: a %T cannot go to an event loop", nc)
		}
		remote := conn.AddrPort(tc.RemoteAddr())
		res, err := s.eng.Register(gnetv2.NewNetConnContext(gnetv2.NewContext(context.Background(), sess), tc))
		if err != nil {
			tc.Close()
			return nil, netip.AddrPort{}, err
		}
		if reg := <-res; reg.Err != nil { // Register closes tc: the loop holds a duplicate
			return nil, netip.AddrPort{}, reg.Err
		}
		sess.mu.Lock()
		opened := sess.gc != nil
		sess.mu.Unlock()
		if !opened { // gnet reports no error when the poller refused the descriptor: it closed it, OnOpen never ran
			return nil, netip.AddrPort{}, errors.New("wsmatrix: gnet: the event loop did not take the connection")
		}
		sess.state.Store(stAnswered)
		return sess, remote, nil
	})
	if c != nil {
		s.run(sess, c, h)
	}
}

// run starts an upgraded connection: its frames in the loop, its handler
// on a fresh goroutine.
func (s *Server) run(sess *session, c *conn.Conn, h api.Handler) {
	sess.c.Store(c)
	if sess.state.CompareAndSwap(stAnswered, stOpen) {
		sess.gc.Wake(nil) // the frames that came with the request and since
	} else {
		c.Gone(net.ErrClosed) // the socket closed during the upgrade
	}
	// A fresh goroutine, with a small stack, rather than this one, whose
	// stack grew through parsing and middleware: a blocking handler keeps
	// its goroutine for the life of the connection.
	go c.Run(h)
}

// handoff is the listener of the net/http server: it accepts the
// connections the loops hand out.
type handoff struct {
	addr      atomic.Pointer[net.Addr] // set once the engine listens
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newHandoff() *handoff {
	return &handoff{ch: make(chan net.Conn), done: make(chan struct{})}
}

// push gives c to net/http without holding the loop.
func (h *handoff) push(c net.Conn) {
	go func() {
		select {
		case h.ch <- c:
		case <-h.done:
			c.Close()
		}
	}()
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.closeOnce.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr {
	if a := h.addr.Load(); a != nil {
		return *a
	}
	return &net.TCPAddr{}
}

// prefixConn is a connection out of a loop: it reads first what the loop
// had read.
type prefixConn struct {
	net.Conn
	prefix []byte
	files  *files
	once   sync.Once
}

// let gives the connection's descriptor back to the count of files.
func (c *prefixConn) let() { c.once.Do(c.files.release) }

func (c *prefixConn) Close() error {
	c.let()
	return c.Conn.Close()
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// rest returns what was not read of the prefix.
func (c *prefixConn) rest() []byte {
	p := c.prefix
	c.prefix = nil
	return p
}
