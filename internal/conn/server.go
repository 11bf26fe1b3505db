package conn

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/wsmatrix/wsmatrix/api"
)

// Transport is what a runtime gives a connection to move bytes.
type Transport interface {
	// Write writes all of b or fails. It is never called concurrently and
	// gives up after the runtime's write timeout.
	Write(b []byte) error
	// Close closes the socket. It may be called more than once.
	Close() error
}

// A Transport may also have CloseWrite, to end its sending side after the
// close frame that fails a connection.

// Server holds what the connections of one runtime share: the options, the
// event pool and the set of open connections.
type Server struct {
	opts api.Options
	pool pool

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	closing  bool
	open     atomic.Int64
	handlers sync.WaitGroup // Conn.Run calls in progress
	live     sync.WaitGroup // connections not yet finished
}

// NewServer returns a server for opts, which must have been completed with
// WithDefaults.
func NewServer(opts api.Options) *Server {
	s := &Server{opts: opts, conns: map[*Conn]struct{}{}}
	s.pool.max = opts.Workers
	return s
}

// Options returns the server's options.
func (s *Server) Options() *api.Options { return &s.opts }

// Open counts the connections that are open now.
func (s *Server) Open() int { return int(s.open.Load()) }

// Admit reserves room for one more connection. It fails when the server is
// shutting down or MaxConnections is reached; then the caller answers 503.
// A successful Admit is followed by NewConn or Release.
func (s *Server) Admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || (s.opts.MaxConnections > 0 && int(s.open.Load()) >= s.opts.MaxConnections) {
		return false
	}
	s.open.Add(1)
	s.live.Add(1)
	return true
}

// Release gives back an Admit that did not become a connection.
func (s *Server) Release() {
	s.open.Add(-1)
	s.live.Done()
}

// NewConn makes the connection for an admitted, accepted upgrade.
// The runtime then feeds it input (ReadLoop or Feed) and must call Run,
// once, to run the handler.
func (s *Server) NewConn(t Transport, r *http.Request, subprotocol string, remote net.Addr) *Conn {
	c := newConn(s, t, r, subprotocol, remote)
	s.handlers.Add(1) // done when Run returns
	s.mu.Lock()
	s.conns[c] = struct{}{}
	closing := s.closing
	s.mu.Unlock()
	if closing { // Shutdown began during the upgrade
		go c.closeWith(api.StatusGoingAway, "server shutting down")
	}
	return c
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.open.Add(-1)
	s.live.Done()
}

// Shutdown refuses new connections, sends close 1001 to every open one and
// waits for them to end and their handlers to return. When ctx ends first
// it cuts the remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	for _, c := range s.snapshot() {
		go c.closeWith(api.StatusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		s.live.Wait()
		s.handlers.Wait()
		s.pool.wait()
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

// Wait blocks until every connection has ended and every handler returned.
func (s *Server) Wait() {
	s.live.Wait()
	s.handlers.Wait()
	s.pool.wait()
}
