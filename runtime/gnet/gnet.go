// Package gnet is the event-loop runtime of wsmatrix, on
// github.com/panjf2000/gnet/v2: one epoll loop per core accepts and reads
// every connection. An upgrade request to a WebSocket route is parsed in
// the loop and its connection stays there: frames are parsed in the loop,
// handlers run off it. Any other connection — pages, APIs, files — is
// handed out of the loop to Go's net/http (its descriptor duplicated into
// Go's poller, with the bytes the loop had read), so plain routes get
// net/http's HTTP/1.1; if such a connection later upgrades, it moves back
// into a loop.
//
// Per WebSocket connection it holds gnet's connection state and
// wsmatrix's, and nothing else while idle: no read buffer (frames are
// parsed from the loop's shared buffer, only an incomplete frame is kept)
// and no goroutine in event style. A blocking-style handler has its own
// goroutine, fed by the connection's bounded inbox. Middleware and the
// upgrade decision run on a short-lived goroutine per handshake, never on
// the loop. A plain HTTP connection costs what it costs under net/http.
//
// TLS is refused: terminate it in front.
package gnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

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

// Server serves a router on gnet event loops, with net/http for plain
// connections.
type Server struct {
	gnetv2.BuiltinEventEngine

	ws    *conn.Server // the router, the options, the connections
	loops int

	mu       sync.Mutex
	shut     bool // Shutdown was called: Start fails
	eng      gnetv2.Engine
	started  bool
	running  chan struct{}      // closed by the first OnTick: every loop is registered and runs
	bg       runtime.Background // the engine's run
	hs       *http.Server       // serves handed-out connections
	plain    *handoff
	files    *files
	stopOnce sync.Once
	stopErr  error

	// Connections that have not finished their request head, and when to
	// cut them.
	dlMu      sync.Mutex
	deadlines map[*session]time.Time
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
	s := &Server{ws: ws, deadlines: map[*session]time.Time{}}
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

// testHookProbed runs once Start holds its address, before the engine
// binds it.
var testHookProbed func()

// testHookRunReturned runs once gnet's Run returned, before the engine
// counts as done.
var testHookRunReturned func()

// Start runs the gnet engine on addr and returns once it accepts.
func (s *Server) Start(addr string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil, errors.New("wsmatrix: gnet: already started")
	}
	if s.shut {
		return nil, errors.New("wsmatrix: gnet: Start after Shutdown: make a new server")
	}
	s.started = true
	s.running = make(chan struct{})
	s.plain = newHandoff() // before the engine: the loops hand connections to it
	s.files = newFiles(s.ws.Options().Logger)
	// Every loop accepts from a listener of its own (SO_REUSEPORT), one
	// connection at a time with its OnOpen right after: the file guard
	// (files.go) sees each socket before the next accept. The address is
	// bound once first: a port in use fails here as it would with
	// net.Listen, and port 0 becomes one port for every loop. With
	// ReusePort (other servers share the port) it is held until the
	// engine bound it, by a socket that does not listen (Reserve): a
	// listening one would be given connections, reset when it closed.
	reuse := s.ws.Options().ReusePort
	var la net.Addr
	release := func() error { return nil }
	if reuse {
		a, free, err := conn.Reserve(addr)
		if err != nil {
			return nil, fmt.Errorf("wsmatrix: gnet: %w", err)
		}
		la, release = a, free
	} else {
		probe, err := conn.Listen(addr, s.ws.Options())
		if err != nil {
			return nil, fmt.Errorf("wsmatrix: gnet: %w", err)
		}
		la = probe.Addr()
		probe.Close() // gnet's SO_REUSEPORT listeners may not share with it
	}
	if testHookProbed != nil {
		testHookProbed()
	}
	bind := la.String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		bind = net.JoinHostPort(host, strconv.Itoa(la.(*net.TCPAddr).Port)) // ":8080" stays every address, both families
	}
	opts := []gnetv2.Option{
		gnetv2.WithTicker(true),
		// A restart binds at once, as net.Listen does, though the last
		// run's connections wait in TIME_WAIT.
		gnetv2.WithReuseAddr(true),
		gnetv2.WithReusePort(true),
		gnetv2.WithTCPNoDelay(gnetv2.TCPNoDelay),
		// Register (a socket coming back from net/http) needs it.
		gnetv2.WithLoadBalancing(gnetv2.LeastConnections),
		gnetv2.WithLogger(logger{s.ws.Options().Logger}),
	}
	if s.loops > 0 {
		opts = append(opts, gnetv2.WithNumEventLoop(s.loops))
	} else {
		opts = append(opts, gnetv2.WithMulticore(true))
	}
	s.bg.Go(func() error {
		err := gnetv2.Run(s, "tcp://"+bind, opts...)
		if testHookRunReturned != nil {
			testHookRunReturned()
		}
		return err
	})
	var failed error
	select {
	case <-s.running:
	case <-s.bg.Done():
		failed = fmt.Errorf("wsmatrix: gnet: %w", s.bg.Err())
	}
	if reuse { // held the address (port 0 included) until the engine bound it too
		release()
	}
	if failed != nil {
		return nil, failed
	}
	s.plain.addr.Store(&la)
	var serve func() error
	s.hs, serve = conn.ServeHTTP(s.plain, s.ws.Options(), s)
	go serve() // ends when Shutdown closes the hand-off listener
	return la, nil
}

// Shutdown stops accepting, lets plain requests finish, closes every
// WebSocket connection with 1001, waits for the close frames to be flushed
// and the handlers to return, then stops the engine. Past ctx's deadline
// it cuts what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.bg.Stopping()
	s.dlMu.Lock()
	for sess := range s.deadlines { // connections still sending their request head
		sess.gc.Close()
	}
	s.dlMu.Unlock()
	s.mu.Lock()
	started, hs := s.started, s.hs
	s.shut = true
	s.mu.Unlock()
	var errs []error
	if hs != nil {
		errs = append(errs, hs.Shutdown(ctx))
	}
	errs = append(errs, s.ws.Shutdown(ctx))
	if !started {
		return errors.Join(errs...)
	}
	s.stopOnce.Do(func() {
		// Closes are asynchronous in gnet: let the loops flush them.
		for s.eng.CountConnections() > 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		// Engine.Stop polls every 500 ms; Run returns as soon as the engine
		// is down, so stop waiting then.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case <-s.bg.Done():
				cancel()
			case <-sctx.Done():
			}
		}()
		s.eng.Stop(sctx)
		select {
		case <-s.running: // it ran: Stop reports it stopped a moment before Run returns, so wait for that too
			select {
			case <-s.bg.Done():
			case <-sctx.Done():
			}
		default: // it never ran: nothing to wait for
		}
		select {
		case <-s.bg.Done():
		default:
			s.stopErr = errors.New("wsmatrix: gnet: the engine did not stop")
		}
	})
	errs = append(errs, s.stopErr)
	return errors.Join(errs...)
}

// Done is closed once the engine stopped.
func (s *Server) Done() <-chan struct{} { return s.bg.Done() }

// Err says why the engine stopped on its own.
func (s *Server) Err() error { return s.bg.Err() }

// logger sends gnet's logs to the runtime's slog logger.
type logger struct{ l *slog.Logger }

func (l logger) Debugf(f string, a ...any) { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Infof(f string, a ...any)  { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Warnf(f string, a ...any)  { l.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Errorf(f string, a ...any) { l.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Fatalf(f string, a ...any) { l.l.Error("gnet: fatal: " + fmt.Sprintf(f, a...)) }
