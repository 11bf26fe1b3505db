// Package stdhttp is the net/http runtime of wsmatrix: net/http serves the
// router's pages and upgrade requests, after the hijack one goroutine per
// connection reads, and the Server is an http.Handler that can be mounted
// in any net/http mux.
//
// In blocking style a WebSocket connection holds one goroutine, the
// handler's, which reads the socket itself while it waits in Receive (a
// helper goroutine reads while the handler is busy elsewhere for more than
// 20 ms, or the connection closes); whoever reads waits in Go's poller
// holding no buffer (a pooled 4 KiB one is borrowed while data flows). In
// event style (OnMessage) it holds none on Linux: the socket moves from
// Go's poller to an epoll set that up to 8 goroutines of the process read
// for every such connection, one read per readiness; elsewhere, and over
// TLS, a helper goroutine reads for the callbacks.
// ServeHTTP returns right after the upgrade, so net/http's request
// goroutine and buffers are released; middleware therefore sees the
// upgrade, not the life of the connection.
//
// When the Server is mounted in an http.Server of yours, that server's
// ReadHeaderTimeout and MaxHeaderBytes bound the handshake; Start sets
// them from Options.
package stdhttp

import (
	"bufio"
	"context"
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
	runtime.Register(Name, runtime.FactoryOf(New))
}

// Server serves a router over net/http. Use it as an http.Handler inside
// your own mux and server, or let Start run its own http.Server.
type Server struct {
	ws *conn.Server // the router, the options, the connections

	mu      sync.Mutex
	shut    bool         // Shutdown was called: Start fails
	httpSrv *http.Server // the server Start runs, if any
	bg      runtime.Background
}

var (
	_ runtime.Runtime = (*Server)(nil)
	_ http.Handler    = (*Server)(nil)
)

// New returns a server for r. It fails when opts holds a value that cannot
// work.
func New(r *api.Router, opts api.Options) (*Server, error) {
	ws, err := conn.NewServer(r, opts)
	if err != nil {
		return nil, err
	}
	return &Server{ws: ws}, nil
}

// Name returns "stdhttp".
func (s *Server) Name() string { return Name }

// ServeHTTP serves the router: its pages and its WebSocket routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ws.Serve(w, r, s.upgrade)
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
		return conn.NetTransport(nc, s.ws.Options().WriteTimeout), conn.AddrPort(nc.RemoteAddr()), nil
	})
	if c == nil {
		return
	}
	// The handler on a fresh goroutine, with a small stack: ServeHTTP
	// returns, and net/http lets go of this request's goroutine and
	// buffers. The handler reads the socket in Receive (a helper goroutine
	// when it is away, or in event style).
	c.Attach(nc, prefix)
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
	if s.shut {
		return nil, errors.New("wsmatrix: stdhttp: Start after Shutdown: make a new server")
	}
	l, hs, serve, err := conn.ListenHTTP(addr, s.ws.Options(), s)
	if err != nil {
		return nil, fmt.Errorf("wsmatrix: stdhttp: %w", err)
	}
	s.httpSrv = hs
	s.bg.Go(serve)
	return l.Addr(), nil
}

// Shutdown stops the listener (when Start was used), closes every
// WebSocket connection with 1001 and waits for the handlers, up to ctx's
// deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	hs := s.httpSrv
	s.shut = true
	s.mu.Unlock()
	s.bg.Stopping()
	var errs []error
	if hs != nil {
		errs = append(errs, hs.Shutdown(ctx))
	}
	errs = append(errs, s.ws.Shutdown(ctx))
	s.bg.Wait()
	return errors.Join(errs...)
}

// Done is closed once the server Start runs stopped serving.
func (s *Server) Done() <-chan struct{} { return s.bg.Done() }

// Err says why the server Start runs stopped serving on its own.
func (s *Server) Err() error { return s.bg.Err() }
