// Package stdhttp is the net/http runtime of wsmatrix: after the hijack one
// goroutine per connection reads, and the Server is an http.Handler that
// can be mounted in any net/http mux.
//
// Per connection it holds a reader goroutine with a 256-byte buffer while
// idle (a 4 KiB pooled one while data flows) and, in blocking style, the
// handler's goroutine. ServeHTTP returns right after the upgrade, so
// net/http's request goroutine and buffers are released; middleware
// therefore sees the upgrade, not the life of the connection.
//
// When the Server is mounted in an http.Server of yours, that server's
// ReadHeaderTimeout and MaxHeaderBytes bound the handshake; Start sets
// them from Options.
package stdhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
	"github.com/wsmatrix/wsmatrix/runtime"
)

// Name is the name this runtime registers under.
const Name = "stdhttp"

func init() {
	runtime.Register(Name, func(r *api.Router, o api.Options) (runtime.Runtime, error) { return New(r, o) })
}

// Server serves a router over net/http. Use it as an http.Handler inside
// your own mux and server, or let Start run its own http.Server.
type Server struct {
	router *api.Router
	ws     *conn.Server
	opts   *api.Options

	mu       sync.Mutex
	httpSrv  *http.Server
	served   chan struct{} // closed when the http.Server's Serve returned
	serveErr error
}

var (
	_ runtime.Runtime = (*Server)(nil)
	_ http.Handler    = (*Server)(nil)
)

// New returns a server for r. It fails when opts holds a value that cannot
// work.
func New(r *api.Router, opts api.Options) (*Server, error) {
	ws, err := conn.NewServer(opts)
	if err != nil {
		return nil, err
	}
	return &Server{router: r, ws: ws, opts: ws.Options()}, nil
}

// Name returns "stdhttp".
func (s *Server) Name() string { return Name }

// ServeHTTP serves the router: its pages and its WebSocket routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ws.Serve(s.router, w, r, s.upgrade)
}

// upgrade checks the handshake, hijacks the connection and serves h on it.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, h api.Handler) {
	var nc net.Conn
	var prefix []byte
	c := s.ws.Upgrade(w, r, func() (conn.Transport, netip.AddrPort, error) {
		var brw *bufio.ReadWriter
		var err error
		nc, brw, err = http.NewResponseController(w).Hijack()
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		nc = conn.Unwrap(nc)
		// Bytes the client sent right behind the request are the first frames.
		if n := brw.Reader.Buffered(); n > 0 {
			prefix, _ = brw.Reader.Peek(n)
			prefix = append([]byte(nil), prefix...)
		}
		nc.SetDeadline(time.Time{})
		return conn.NetTransport(nc, s.opts.WriteTimeout), conn.AddrPort(nc.RemoteAddr()), nil
	})
	if c == nil {
		return
	}
	// Both on fresh goroutines, with small stacks: ServeHTTP returns, and
	// net/http lets go of this request's goroutine and buffers.
	go c.ReadLoop(nc, prefix)
	go c.Run(h)
}

// Start listens on addr and serves in the background with its own
// http.Server, whose header timeout is the handshake timeout.
func (s *Server) Start(addr string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpSrv != nil {
		return nil, errors.New("wsmatrix: stdhttp: already started")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wsmatrix: stdhttp: %w", err)
	}
	l = conn.Listener(l, s.opts)
	if s.opts.TLSConfig != nil {
		l = tls.NewListener(l, s.opts.TLSConfig)
	}
	hs := conn.HTTPServer(s.opts, s)
	s.httpSrv = hs
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return l.Addr(), nil
}

// Shutdown stops the listener (when Start was used), closes every
// WebSocket connection with 1001 and waits for the handlers, up to ctx's
// deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	hs := s.httpSrv
	s.mu.Unlock()
	var errs []error
	if hs != nil {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.ws.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if hs != nil {
		<-s.served
		if s.serveErr != nil {
			errs = append(errs, s.serveErr)
		}
	}
	return errors.Join(errs...)
}

// Done is closed once the server Start runs stopped serving.
func (s *Server) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Err says why the server Start runs stopped serving: nil after Shutdown.
func (s *Server) Err() error {
	select {
	case <-s.Done():
		return s.serveErr
	default:
		return nil
	}
}
