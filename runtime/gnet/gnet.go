// Package gnet is the event-loop runtime of wsmatrix, on
// github.com/panjf2000/gnet/v2: one epoll loop per core reads every
// connection, parses the upgrade request and the frames in the loop, and
// runs handlers off the loop.
//
// Per connection it holds gnet's connection state and wsmatrix's, and
// nothing else while idle: no read buffer (frames are parsed from gnet's
// shared loop buffer, and only an incomplete frame is kept) and no
// goroutine in event style. A blocking-style handler has its own goroutine,
// fed by the connection's bounded inbox.
//
// Middleware and the upgrade decision run on a short-lived goroutine per
// handshake, never on the loop, so a slow auth check cannot stall other
// connections. Plain HTTP requests get an HTTP/1.1 answer and are closed;
// GET /healthz answers 200 for load balancers.
package gnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
	"github.com/wsmatrix/wsmatrix/runtime"
)

// Name is the name this runtime registers under.
const Name = "gnet"

func init() {
	runtime.Register(Name, func(r *api.Router, o api.Options) (runtime.Runtime, error) { return New(r, o) })
}

const (
	// pendingLimit bounds what a client may send behind its upgrade
	// request before the answer.
	pendingLimit = 64 << 10
	// lingerTime is how long a refused request's connection is read and
	// discarded after the answer, so that the answer is not lost to a
	// reset.
	lingerTime = time.Second
)

// Option configures the gnet runtime beyond api.Options.
type Option func(*Server)

// WithLoops sets the number of event loops. Default: one per CPU.
func WithLoops(n int) Option { return func(s *Server) { s.loops = n } }

// Server serves a router on gnet event loops.
type Server struct {
	gnetv2.BuiltinEventEngine

	router *api.Router
	ws     *conn.Server
	opts   *api.Options
	loops  int

	mu       sync.Mutex
	eng      gnetv2.Engine
	started  bool
	stopOnce sync.Once
	stopErr  error
	booted   chan struct{}
	runDone  chan struct{}
	runErr   error
	closing  atomic.Bool

	// Connections that have not finished their handshake, or linger
	// after a refusal, and when to cut them.
	dlMu      sync.Mutex
	deadlines map[*session]time.Time
}

var (
	_ runtime.Runtime     = (*Server)(nil)
	_ gnetv2.EventHandler = (*Server)(nil)
	_ api.Upgrader        = (*upgrader)(nil)
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
	ws, err := conn.NewServer(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{router: r, ws: ws, opts: ws.Options(), deadlines: map[*session]time.Time{}}
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

// IdleGoroutines reports the goroutines an idle connection holds: none in
// event style, the handler's in blocking style.
func (s *Server) IdleGoroutines(eventStyle bool) int {
	if eventStyle {
		return 0
	}
	return 1
}

// Done is closed once the engine Start runs stopped.
func (s *Server) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runDone
}

// Err says why the engine stopped: nil after Shutdown.
func (s *Server) Err() error {
	select {
	case <-s.Done():
		if s.closing.Load() {
			return nil
		}
		if s.runErr == nil {
			return errors.New("wsmatrix: gnet: the engine stopped")
		}
		return s.runErr
	default:
		return nil
	}
}

// Start runs the gnet engine on addr and returns once it accepts.
func (s *Server) Start(addr string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil, errors.New("wsmatrix: gnet: already started")
	}
	s.started = true
	s.booted, s.runDone = make(chan struct{}), make(chan struct{})
	opts := []gnetv2.Option{
		gnetv2.WithTicker(true),
		// A restart binds at once, as net.Listen does, though the last
		// run's connections wait in TIME_WAIT.
		gnetv2.WithReuseAddr(true),
		gnetv2.WithTCPNoDelay(gnetv2.TCPNoDelay),
		gnetv2.WithLogger(logger{s.opts.Logger}),
	}
	if s.loops > 0 {
		opts = append(opts, gnetv2.WithNumEventLoop(s.loops))
	} else {
		opts = append(opts, gnetv2.WithMulticore(true))
	}
	go func() {
		defer close(s.runDone)
		s.runErr = gnetv2.Run(s, "tcp://"+addr, opts...)
	}()
	select {
	case <-s.booted:
	case <-s.runDone:
		return nil, fmt.Errorf("wsmatrix: gnet: %w", s.runErr)
	}
	fd, err := s.eng.Dup()
	if err != nil {
		return nil, fmt.Errorf("wsmatrix: gnet: listener: %w", err)
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("wsmatrix: gnet: listener address: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	}
	return nil, fmt.Errorf("wsmatrix: gnet: listener address of type %T", sa)
}

// Shutdown stops accepting, closes every connection with 1001, waits for
// the close frames to be flushed and the handlers to return, then stops
// the engine. Past ctx's deadline it cuts what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.dlMu.Lock()
	for sess := range s.deadlines {
		sess.gc.Close()
	}
	s.dlMu.Unlock()
	err := s.ws.Shutdown(ctx)

	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return err
	}
	s.stopOnce.Do(func() {
		// Closes are asynchronous in gnet: wait for the loops to flush them.
		for s.eng.CountConnections() > 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		// Engine.Stop polls every 500 ms; Run returns as soon as the engine
		// is down, so stop waiting then.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case <-s.runDone:
				cancel()
			case <-sctx.Done():
			}
		}()
		err := s.eng.Stop(sctx)
		select {
		case <-s.runDone:
			s.stopErr = s.runErr
		default:
			s.stopErr = fmt.Errorf("wsmatrix: gnet: stop: %w", err)
		}
	})
	if err == nil {
		err = s.stopErr
	}
	return err
}

// logger sends gnet's logs to the runtime's slog logger.
type logger struct{ l *slog.Logger }

func (l logger) Debugf(f string, a ...any) { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Infof(f string, a ...any)  { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Warnf(f string, a ...any)  { l.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Errorf(f string, a ...any) { l.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Fatalf(f string, a ...any) { l.l.Error("gnet: fatal: " + fmt.Sprintf(f, a...)) }
