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
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
	"github.com/wsmatrix/wsmatrix/internal/wire"
	"github.com/wsmatrix/wsmatrix/runtime"
)

// Name is the name this runtime registers under.
const Name = "gnet"

func init() {
	runtime.Register(Name, func(r *api.Router, o api.Options) (runtime.Runtime, error) { return New(r, o) })
}

const (
	// pausedLimit bounds what gnet buffers for a connection whose handler
	// does not take its messages (gnet cannot pause reading); past it the
	// connection closes with 1008.
	pausedLimit = 1 << 20
	// pendingLimit bounds what a client may send behind its upgrade
	// request before the answer.
	pendingLimit = 64 << 10
	// outboundLimit bounds the bytes gnet holds for a peer that does not
	// read; past it Send waits (QueueBlock, up to WriteTimeout) or fails
	// (QueueClose).
	outboundLimit = 512 << 10
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
	_ conn.LoopWriter     = (*session)(nil)
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

// ---- gnet events, on the loops ----

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnetv2.Engine) gnetv2.Action {
	s.eng = eng
	close(s.booted)
	return gnetv2.None
}

// OnOpen starts the handshake clock of a new connection.
func (s *Server) OnOpen(gc gnetv2.Conn) ([]byte, gnetv2.Action) {
	if s.closing.Load() {
		return nil, gnetv2.Close
	}
	sess := newSession(s, gc)
	gc.SetContext(sess)
	if s.opts.HandshakeTimeout > 0 {
		s.setDeadline(sess, time.Now().Add(s.opts.HandshakeTimeout))
	}
	return nil, gnetv2.None
}

// OnClose ends the WebSocket connection of a closed socket.
func (s *Server) OnClose(gc gnetv2.Conn, err error) gnetv2.Action {
	sess, _ := gc.Context().(*session)
	if sess == nil {
		return gnetv2.None
	}
	s.clearDeadline(sess)
	if sess.state.Swap(stClosed) == stOpen {
		if err == nil {
			err = net.ErrClosed
		}
		sess.c.Load().Gone(err)
	}
	return gnetv2.None
}

// OnTraffic parses what arrived: the upgrade request, then frames.
func (s *Server) OnTraffic(gc gnetv2.Conn) gnetv2.Action {
	sess := gc.Context().(*session)
	switch sess.state.Load() {
	case stRequest:
		return s.readRequest(gc, sess)
	case stServing:
		if gc.InboundBuffered() > pendingLimit {
			return gnetv2.Close
		}
	case stOpen:
		c := sess.c.Load()
		buf, _ := gc.Peek(-1)
		used, full := c.Feed(buf)
		if used > 0 {
			gc.Discard(used) // Discard(0) would drop everything
		}
		if full && gc.InboundBuffered() > pausedLimit {
			c.Fail(api.StatusPolicyViolation, "peer sends faster than the handler receives")
		}
	default: // closed or lingering: drop input
		gc.Discard(-1)
	}
	return gnetv2.None
}

// OnTick cuts connections past their handshake or linger deadline.
func (s *Server) OnTick() (time.Duration, gnetv2.Action) {
	now := time.Now()
	s.dlMu.Lock()
	for sess, d := range s.deadlines {
		if now.After(d) {
			delete(s.deadlines, sess)
			sess.gc.Close()
		}
	}
	s.dlMu.Unlock()
	return tickEvery(s.opts.HandshakeTimeout), gnetv2.None
}

func tickEvery(hs time.Duration) time.Duration {
	if hs <= 0 {
		return time.Second
	}
	return min(max(hs/8, 10*time.Millisecond), time.Second)
}

func (s *Server) setDeadline(sess *session, t time.Time) {
	s.dlMu.Lock()
	s.deadlines[sess] = t
	s.dlMu.Unlock()
}

func (s *Server) clearDeadline(sess *session) {
	s.dlMu.Lock()
	delete(s.deadlines, sess)
	s.dlMu.Unlock()
}

// readRequest parses the upgrade request from gnet's buffer, bounded by
// MaxHeaderBytes; a partial request stays buffered for the next call.
func (s *Server) readRequest(gc gnetv2.Conn, sess *session) gnetv2.Action {
	buf, _ := gc.Peek(-1)
	r, n, err := wire.ReadRequest(buf, s.opts.MaxHeaderBytes)
	if err != nil {
		var he *wire.HandshakeError
		errors.As(err, &he)
		return s.refuse(gc, sess, he.Status, he.Header, he.Msg)
	}
	if r == nil {
		return gnetv2.None
	}
	gc.Discard(n) // n > 0: a request head
	s.clearDeadline(sess)
	r.RemoteAddr = sess.remote.String()
	if r.URL.Path == "/healthz" && !wire.HeaderHasToken(r.Header, "Upgrade", "websocket") {
		return s.refuse(gc, sess, http.StatusOK, nil, "ok")
	}
	sess.state.Store(stServing)
	go s.serve(sess, r)
	return gnetv2.None
}

// refuse answers a request that is not upgraded and closes the connection
// once the peer has read it.
func (s *Server) refuse(gc gnetv2.Conn, sess *session, status int, h http.Header, msg string) gnetv2.Action {
	w := newResponse()
	for k, v := range h {
		w.header[k] = v
	}
	if status == http.StatusOK {
		w.header.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte(msg + "\n"))
	} else {
		http.Error(w, msg, status)
	}
	gc.Write(w.bytes())
	return s.linger(gc, sess)
}

// linger half-closes a refused connection and reads it until the peer
// closes or lingerTime passes, so that the answer is not lost to a reset.
func (s *Server) linger(gc gnetv2.Conn, sess *session) gnetv2.Action {
	sess.state.Store(stLinger)
	if gc.OutboundBuffered() > 0 {
		return gnetv2.Close // gnet flushes what it can before closing
	}
	gc.Discard(-1)
	unix.Shutdown(gc.Fd(), unix.SHUT_WR)
	s.setDeadline(sess, time.Now().Add(lingerTime))
	return gnetv2.None
}

// ---- the upgrade, off the loop ----

// serve runs the router (middleware, then the upgrade) for a parsed
// request, and the handler after an upgrade.
func (s *Server) serve(sess *session, r *http.Request) {
	w := newResponse()
	u := &upgrader{s: s, sess: sess}
	s.router.ServeHTTP(w, r.WithContext(api.WithUpgrader(r.Context(), u)))
	if u.upgraded {
		return
	}
	if sess.Write(w.bytes()) == nil {
		sess.gc.Close()
	}
}

type upgrader struct {
	s        *Server
	sess     *session
	upgraded bool
}

// Upgrade checks the handshake, answers 101 and runs h.
func (u *upgrader) Upgrade(w http.ResponseWriter, r *http.Request, h api.Handler) {
	s, sess := u.s, u.sess
	acc, ok := s.ws.Admission(w, r)
	if !ok {
		return
	}
	u.upgraded = true
	// No wait: the loop writes in the order of the calls, so the 101 goes
	// out before any frame the handler sends, and its buffer is not reused.
	if err := sess.gc.AsyncWrite(wire.AppendResponse(nil, acc), nil); err != nil {
		s.ws.Release()
		sess.gc.Close()
		return
	}
	c := s.ws.NewConn(sess, r, acc.Subprotocol, sess.remote)
	sess.c.Store(c)
	if sess.state.CompareAndSwap(stServing, stOpen) {
		sess.gc.Wake(nil) // frames that came right behind the request
	} else {
		c.Gone(net.ErrClosed) // the socket closed during the upgrade
	}
	// A fresh goroutine, with a small stack, rather than this one, whose
	// stack grew through parsing and middleware: a blocking handler keeps
	// its goroutine for the life of the connection.
	go c.Run(h)
}

// ---- the transport ----

const (
	stRequest int32 = iota // reading the upgrade request
	stServing              // middleware and upgrade running off the loop
	stOpen                 // WebSocket frames
	stLinger               // refused: draining until close
	stClosed
)

// session is wsmatrix's state of one gnet connection and its transport.
type session struct {
	s      *Server
	gc     gnetv2.Conn
	remote netip.AddrPort
	state  atomic.Int32
	c      atomic.Pointer[conn.Conn]

	mu       sync.Mutex
	pending  []*[]byte // buffers handed to the loop, oldest first
	err      error     // the first failed write
	cb       gnetv2.AsyncCallback
	inflight atomic.Int64 // bytes handed to the loop and not yet written or buffered
	outbound atomic.Int64 // bytes gnet holds for the peer, as of the last write
}

func newSession(s *Server, gc gnetv2.Conn) *session {
	sess := &session{s: s, gc: gc}
	if a, ok := gc.RemoteAddr().(*net.TCPAddr); ok { // gnet's address is only valid in the loop: copy it
		sess.remote = a.AddrPort()
	}
	return sess
}

// written runs on the loop after each AsyncWrite of this session, in the
// order of the writes: it recycles the oldest buffer and records how much
// gnet still holds for the peer.
func (sess *session) written(c gnetv2.Conn, err error) error {
	sess.mu.Lock()
	bp := sess.pending[0]
	sess.pending[0] = nil
	sess.pending = sess.pending[1:]
	if len(sess.pending) == 0 {
		sess.pending = nil
	}
	if err != nil && sess.err == nil {
		sess.err = err
	}
	sess.mu.Unlock()
	sess.inflight.Add(-int64(len(*bp)))
	sess.outbound.Store(int64(c.OutboundBuffered()))
	putBuf(bp)
	return nil
}

// Write copies b and hands the copy to the loop, without waiting for it:
// the loop writes in the order of the calls. While the bytes the peer has
// not taken (in flight to the loop, or held by gnet) pass outboundLimit,
// it waits for the peer to read, up to WriteTimeout, or fails at once
// under QueueClose.
func (sess *session) Write(b []byte) error {
	sess.mu.Lock()
	err := sess.err
	if err == nil {
		bp := getBuf(len(b))
		*bp = append(*bp, b...)
		sess.pending = append(sess.pending, bp)
		sess.inflight.Add(int64(len(b)))
		if sess.cb == nil {
			sess.cb = sess.written
		}
		if err = sess.gc.AsyncWrite(*bp, sess.cb); err != nil {
			sess.pending = sess.pending[:len(sess.pending)-1]
			sess.inflight.Add(-int64(len(b)))
			putBuf(bp)
		}
	}
	sess.mu.Unlock()
	if err != nil {
		return err
	}
	if sess.backlog() <= outboundLimit {
		return nil
	}
	o := sess.s.opts
	if o.SendQueueFull == api.QueueClose {
		return fmt.Errorf("wsmatrix: gnet: %w: %d bytes wait for the peer", api.ErrQueueFull, sess.backlog())
	}
	deadline := time.Now().Add(o.WriteTimeout)
	for delay := time.Millisecond; sess.backlog() > outboundLimit; delay = min(2*delay, 50*time.Millisecond) {
		if o.WriteTimeout > 0 && time.Now().After(deadline) {
			return fmt.Errorf("wsmatrix: gnet: write timeout: %d bytes wait for the peer", sess.backlog())
		}
		time.Sleep(delay)
		done := make(chan struct{})
		err := sess.gc.EventLoop().Execute(context.Background(), gnetv2.RunnableFunc(func(context.Context) error {
			sess.outbound.Store(int64(sess.gc.OutboundBuffered()))
			close(done)
			return nil
		}))
		if err != nil {
			return err
		}
		select {
		case <-done:
		case <-time.After(time.Second): // a stopped loop never answers
			return errors.New("wsmatrix: gnet: event loop did not answer")
		}
	}
	return nil
}

func (sess *session) backlog() int64 { return sess.inflight.Load() + sess.outbound.Load() }

// Write buffers come from size-classed pools, as pointers so that
// recycling one allocates nothing.
var bufPools [8]sync.Pool // 512 B << i

// getBuf returns an empty buffer with room for n bytes.
func getBuf(n int) *[]byte {
	for i := range bufPools {
		if size := 512 << i; n <= size {
			if bp, ok := bufPools[i].Get().(*[]byte); ok {
				*bp = (*bp)[:0]
				return bp
			}
			b := make([]byte, 0, size)
			return &b
		}
	}
	b := make([]byte, 0, n)
	return &b
}

func putBuf(bp *[]byte) {
	for i := range bufPools {
		if cap(*bp) == 512<<i {
			bufPools[i].Put(bp)
			return
		}
	}
}

// WriteInLoop writes from the loop itself, for pongs and close frames sent
// while parsing.
func (sess *session) WriteInLoop(b []byte) error {
	_, err := sess.gc.Write(b)
	return err
}

// Resume asks the loop to parse again once the handler took a message.
func (sess *session) Resume() { sess.gc.Wake(nil) }

// Close closes the socket once gnet has flushed what it holds.
func (sess *session) Close() error { return sess.gc.Close() }

// CloseWrite half-closes after a protocol error's close frame, so the peer
// sees EOF.
func (sess *session) CloseWrite() error {
	return sess.gc.EventLoop().Execute(context.Background(), gnetv2.RunnableFunc(func(context.Context) error {
		if sess.gc.OutboundBuffered() == 0 {
			unix.Shutdown(sess.gc.Fd(), unix.SHUT_WR)
		}
		return nil
	}))
}

// ---- plain HTTP answers ----

// response buffers what middleware or the router answer instead of an
// upgrade, to be written as one HTTP/1.1 response that closes the
// connection.
type response struct {
	header http.Header
	status int
	body   []byte
}

const maxBody = 64 << 10

func newResponse() *response { return &response{header: http.Header{}} }

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *response) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	n := min(len(p), maxBody-len(w.body))
	w.body = append(w.body, p[:n]...)
	return len(p), nil
}

func (w *response) bytes() []byte {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n", w.status, http.StatusText(w.status))
	w.header.Del("Content-Length")
	w.header.Del("Transfer-Encoding")
	w.header.Set("Connection", "close")
	var hb bytes.Buffer
	w.header.Write(&hb)
	b = append(b, hb.Bytes()...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, w.body...)
}

// logger sends gnet's logs to the runtime's slog logger.
type logger struct{ l *slog.Logger }

func (l logger) Debugf(f string, a ...any) { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Infof(f string, a ...any)  { l.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Warnf(f string, a ...any)  { l.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Errorf(f string, a ...any) { l.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (l logger) Fatalf(f string, a ...any) { l.l.Error("gnet: fatal: " + fmt.Sprintf(f, a...)) }
