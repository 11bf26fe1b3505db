// Package gnet is the event-loop runtime of wsmatrix, on
// github.com/panjf2000/gnet/v2: Go's net/http serves HTTP (pages, and the
// upgrade request with its middleware), and each WebSocket connection is
// then handed to one of gnet's epoll loops, which reads and parses its
// frames; handlers run off the loops.
//
// Per WebSocket connection it holds gnet's connection state and
// wsmatrix's, and nothing else while idle: no read buffer (frames are
// parsed from the loop's shared buffer, only an incomplete frame is kept),
// no goroutine in event style. A blocking-style handler has its own
// goroutine, fed by the connection's bounded inbox. A plain HTTP
// connection costs what it costs under net/http (a goroutine and its
// buffers), until it upgrades.
//
// The socket moves from net/http to a loop by gnet's Enroll, which
// duplicates its descriptor into the loop's poller; the net/http side is
// then closed. TLS is refused: terminate it in front.
package gnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	gnetv2 "github.com/panjf2000/gnet/v2"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
	"github.com/wsmatrix/wsmatrix/runtime"
)

// Name is the name this runtime registers under.
const Name = "gnet"

func init() {
	runtime.Register(Name, func(r *api.Router, o api.Options) (runtime.Runtime, error) { return New(r, o) })
}

// Option configures the gnet runtime beyond api.Options.
type Option func(*Server)

// WithLoops sets the number of event loops. Default: one per CPU.
func WithLoops(n int) Option { return func(s *Server) { s.loops = n } }

// Server serves a router: HTTP with net/http, WebSocket frames on gnet
// event loops.
type Server struct {
	gnetv2.BuiltinEventEngine

	ws    *conn.Server // the router, the options, the connections
	loops int

	mu       sync.Mutex
	cli      *gnetv2.Client
	hs       *http.Server
	bg       runtime.Background
	stopOnce sync.Once
	stopErr  error
}

var (
	_ runtime.Runtime     = (*Server)(nil)
	_ gnetv2.EventHandler = (*Server)(nil)
	_ http.Handler        = (*Server)(nil)
	_ conn.Transport      = (*session)(nil)
	_ conn.TryWriter      = (*session)(nil)
	_ conn.Backlogger     = (*session)(nil)
	_ conn.Resumer        = (*session)(nil)
)

// New returns a gnet server for r. It fails when opts holds a value that
// cannot work.
func New(r *api.Router, opts api.Options, o ...Option) (*Server, error) {
	if opts.TLSConfig != nil {
		return nil, errors.New("wsmatrix: gnet: TLS is not supported by the event-loop runtime; terminate TLS in front of it (see docs/runtimes.md) or use stdhttp or fasthttp")
	}
	ws, err := conn.NewServer(r, opts)
	if err != nil {
		return nil, err
	}
	s := &Server{ws: ws}
	for _, f := range o {
		f(s)
	}
	if s.loops < 0 {
		return nil, fmt.Errorf("wsmatrix: gnet: %d event loops", s.loops)
	}
	return s, nil
}

// Name returns "gnet".
func (s *Server) Name() string { return Name }

// Start starts the event loops and serves HTTP on addr in the background.
func (s *Server) Start(addr string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli != nil || s.hs != nil {
		return nil, errors.New("wsmatrix: gnet: already started")
	}
	opts := []gnetv2.Option{
		gnetv2.WithTCPNoDelay(gnetv2.TCPNoDelay),
		gnetv2.WithLogger(logger{s.ws.Options().Logger}),
	}
	if s.loops > 0 {
		opts = append(opts, gnetv2.WithNumEventLoop(s.loops))
	} else {
		opts = append(opts, gnetv2.WithMulticore(true))
	}
	cli, err := gnetv2.NewClient(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("wsmatrix: gnet: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("wsmatrix: gnet: %w", err)
	}
	l, hs, serve, err := conn.ListenHTTP(addr, s.ws.Options(), s)
	if err != nil {
		cli.Stop()
		return nil, fmt.Errorf("wsmatrix: gnet: %w", err)
	}
	s.cli, s.hs = cli, hs
	s.bg.Go(serve)
	return l.Addr(), nil
}

// Shutdown stops accepting, lets plain HTTP requests finish, closes every
// WebSocket connection with 1001, waits for the close frames to be flushed
// and the handlers to return, then stops the loops. Past ctx's deadline it
// cuts what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	hs, cli := s.hs, s.cli
	s.mu.Unlock()
	s.bg.Stopping()
	var errs []error
	if hs != nil {
		errs = append(errs, hs.Shutdown(ctx))
	}
	errs = append(errs, s.ws.Shutdown(ctx))
	s.bg.Wait()
	if cli != nil {
		s.stopOnce.Do(func() { s.stopErr = cli.Stop() })
		errs = append(errs, s.stopErr)
	}
	return errors.Join(errs...)
}

// Done is closed once the HTTP server Start runs stopped serving.
func (s *Server) Done() <-chan struct{} { return s.bg.Done() }

// Err says why the server stopped serving on its own.
func (s *Server) Err() error { return s.bg.Err() }

// logger sends gnet's logs to the runtime's slog logger.
type logger struct{ l *slog.Logger }

func (l logger) Debugf(f string, a ...any) { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Infof(f string, a ...any)  { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Warnf(f string, a ...any)  { l.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Errorf(f string, a ...any) { l.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Fatalf(f string, a ...any) { l.l.Error("gnet: fatal: " + fmt.Sprintf(f, a...)) }
