package conn

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// Server holds what the connections of one runtime share: the options, the
// event pool, the keepalive clock and the set of open connections.
type Server struct {
	router    http.Handler // the *api.Router the runtime serves
	opts      api.Options
	obs       api.Observer // the options' observer, with no nil func
	pool      pool
	logs      refusalLog
	deflaters sync.Map // wire.Deflate -> *deflater, shared without context takeover

	// maxMessage is the most one message may take as received: ReadLimit,
	// and for a compressed one deflate's slack (wire.DeflateSlack).
	maxMessage int64

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	closing  atomic.Bool // Shutdown began; set under mu, so that admit and Shutdown's snapshot agree
	open     atomic.Int64
	handlers sync.WaitGroup // Conn.Run calls in progress
	live     sync.WaitGroup // connections not yet finished

	tickEvery time.Duration // 0: no keepalive
	clockStop chan struct{} // non-nil while the clock runs
	clockWG   sync.WaitGroup
}

// NewServer returns a server for router and opts, with every zero field
// of opts set to its default; it fails when a field holds a value that
// cannot work.
func NewServer(router *api.Router, opts api.Options) (*Server, error) {
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	// Conn.Subprotocol indexes Subprotocols, and the origin check reads
	// OriginPatterns: the server's own copies, whatever the caller does
	// with its slices later.
	opts.Subprotocols, opts.OriginPatterns = slices.Clone(opts.Subprotocols), slices.Clone(opts.OriginPatterns)
	s := &Server{router: router, opts: opts, obs: observer(opts.Observer, opts.Logger), conns: map[*Conn]struct{}{}}
	s.logs.limit.Burst = refusalBurst
	s.maxMessage = opts.ReadLimit + wire.DeflateSlack(opts.ReadLimit)
	s.pool.max = opts.Workers
	s.tickEvery = clockPeriod(&opts)
	return s, nil
}

// observer returns o with every nil func replaced by one that does
// nothing, so that the hot paths call it without a check, and every func
// of the user's guarded: an observer is called from the read and write
// paths, under gnet's loop and during the close, and a panic in it is
// logged (at most once a second, with its stack) and counted by Panicked,
// never let through to the connection or the loop.
func observer(o *api.Observer, log *slog.Logger) api.Observer {
	var n api.Observer
	if o != nil {
		n = *o
	}
	g := &observerGuard{log: log}
	if f := n.Panicked; f != nil {
		n.Panicked = func() {
			defer g.recovered("Panicked", false)
			f()
		}
	} else {
		n.Panicked = func() {}
	}
	g.panicked = n.Panicked
	n.Handshake = guarded(g, "Handshake", n.Handshake)
	n.Opened = guarded0(g, "Opened", n.Opened)
	n.Closed = guarded(g, "Closed", n.Closed)
	n.Received = guarded(g, "Received", n.Received)
	n.Sent = guarded(g, "Sent", n.Sent)
	n.QueueFull = guarded0(g, "QueueFull", n.QueueFull)
	n.Refused = guarded(g, "Refused", n.Refused)
	return n
}

// observerGuard contains the panics of an Observer's funcs.
type observerGuard struct {
	log      *slog.Logger
	limit    LogLimit
	panicked func()
}

// recovered is deferred around a call of the user's observer.
func (g *observerGuard) recovered(name string, count bool) {
	v := recover()
	if v == nil {
		return
	}
	if ok, held := g.limit.Allow(); ok {
		g.log.Error("wsmatrix: observer panic", "func", "Observer."+name, "panic", v, "stack", string(debug.Stack()), "left_out", held)
	}
	if count {
		g.panicked()
	}
}

func guarded[T any](g *observerGuard, name string, f func(T)) func(T) {
	if f == nil {
		return func(T) {}
	}
	return func(v T) {
		defer g.recovered(name, true)
		f(v)
	}
}

func guarded0(g *observerGuard, name string, f func()) func() {
	if f == nil {
		return func() {}
	}
	return func() {
		defer g.recovered(name, true)
		f()
	}
}

// Options returns the server's options.
func (s *Server) Options() *api.Options { return &s.opts }

// admit reserves room for one more connection. It fails, saying why, when
// the server is shutting down or MaxConnections is reached.
func (s *Server) admit() (refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing.Load():
		return ShuttingDown
	case s.opts.MaxConnections > 0 && int(s.open.Load()) >= s.opts.MaxConnections:
		return "wsmatrix: too many connections"
	}
	s.open.Add(1)
	s.live.Add(1)
	return ""
}

// ShuttingDown is the body of the 503 a request gets once Shutdown began.
const ShuttingDown = "wsmatrix: server shutting down"

// Closing reports whether Shutdown began, without the server's lock (an
// event loop asks it).
func (s *Server) Closing() bool { return s.closing.Load() }

// release gives back an admission that did not become a connection.
func (s *Server) release() {
	s.open.Add(-1)
	s.live.Done()
}

// newConnAdmitted makes the connection for an admitted, accepted upgrade;
// first (the 101 answer) goes out before any frame.
func (s *Server) newConnAdmitted(t Transport, r *http.Request, subprotocol uint16, remote netip.AddrPort, dfl *deflater, first []byte) *Conn {
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()) // 127.0.0.1, not ::ffff:127.0.0.1
	c := newConn(s, t, r, subprotocol, remote, dfl)
	c.w.queue, c.w.queued, c.w.active = first, len(first), true // written below, before anyone else can write
	s.obs.Handshake(http.StatusSwitchingProtocols)
	s.obs.Opened()
	s.handlers.Add(1) // done when Run returns
	s.mu.Lock()
	s.conns[c] = struct{}{}
	closing := s.closing.Load()
	if s.tickEvery > 0 && s.clockStop == nil {
		s.clockStop = make(chan struct{})
		s.clockWG.Add(1)
		go s.runClock(s.clockStop)
	}
	s.mu.Unlock()
	c.drain()
	c.wmu.Lock()
	if x := c.w.cold; x != nil { // the handshake's buffer: an idle connection keeps none
		x.spare = nil
		c.trimColdLocked()
	}
	if len(c.w.queue) == 0 {
		c.w.queue = nil
	}
	c.wmu.Unlock()
	if closing { // Shutdown began during the upgrade
		c.closeWith(api.StatusGoingAway, "server shutting down")
	}
	return c
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.clockStop != nil {
		close(s.clockStop)
		s.clockStop = nil
	}
	s.mu.Unlock()
	s.open.Add(-1)
	s.live.Done()
}

// Shutdown refuses new connections, sends close 1001 to every open one and
// waits for them to end and their handlers to return. When ctx ends first
// it cuts the remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	s.mu.Unlock()
	for _, c := range s.snapshot() {
		c.closeWith(api.StatusGoingAway, "server shutting down") // never waits on a socket
	}
	done := make(chan struct{})
	go func() {
		s.wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range s.snapshot() {
		c.abort("server shutdown deadline")
	}
	return ctx.Err()
}

func (s *Server) snapshot() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// wait blocks until every connection has ended and every handler returned.
func (s *Server) wait() {
	s.live.Wait()
	s.handlers.Wait()
	s.pool.wait()
	s.clockWG.Wait()
}
