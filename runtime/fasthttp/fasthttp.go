// Package fasthttp is the fasthttp runtime of wsmatrix: WebSocket routes
// for services built on github.com/valyala/fasthttp, standalone or in front
// of an existing fasthttp handler, through RequestCtx.Hijack.
//
// The upgrade request is copied out of the RequestCtx before the hijack
// (fasthttp reuses it afterwards) into the *http.Request that middleware
// and handlers see. The 101 answer is written by wsmatrix itself
// (HijackSetNoResponse), so fasthttp's "Connection: close" handling
// (a close token in the request, MaxRequestsPerConn) cannot spoil it.
//
// Per connection, after the upgrade, as on stdhttp: in blocking style one
// goroutine, the handler reads the socket itself in Receive and a helper
// while the handler is busy (bytes fasthttp had already buffered are taken
// over first); in event style none on Linux, the socket being read from
// the epoll set that stdhttp's event-style connections share.
// fasthttp's own 4 KiB read buffer is released when the server keeps
// hijacked connections (Start does; call Configure on your own server).
package fasthttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sync"
	"time"

	fh "github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
	"github.com/wsmatrix/wsmatrix/runtime"
)

// Name is the name this runtime registers under.
const Name = "fasthttp"

func init() {
	runtime.Register(Name, runtime.FactoryOf(New))
}

// Server serves a router over fasthttp.
type Server struct {
	ws *conn.Server // the router, the options, the connections

	mu           sync.Mutex
	shut         bool         // Shutdown was called: Start fails
	ln           net.Listener // what Start serves on: Shutdown closes it
	srv          *fh.Server   // the server Start runs, if any
	bg           runtime.Background
	stopOnce     sync.Once
	stopErr      error
	keepHijacked bool // the fasthttp server keeps hijacked connections open
}

var (
	_ runtime.Runtime = (*Server)(nil)
)

// New returns a fasthttp server for r. It fails when opts holds a value
// that cannot work.
func New(r *api.Router, opts api.Options) (*Server, error) {
	ws, err := conn.NewServer(r, opts)
	if err != nil {
		return nil, err
	}
	return &Server{ws: ws}, nil
}

// Name returns "fasthttp".
func (s *Server) Name() string { return Name }

// Done is closed once the server Start runs stopped serving.
func (s *Server) Done() <-chan struct{} { return s.bg.Done() }

// Err says why the server Start runs stopped serving on its own.
func (s *Server) Err() error { return s.bg.Err() }

// Configure prepares a fasthttp.Server of yours to carry WebSocket
// connections: it keeps hijacked connections open after the hijack
// handler returns (KeepHijackedConns), which lets wsmatrix release
// fasthttp's read buffer and goroutine, and bounds the request head with
// the handshake options when the server leaves them at zero.
func (s *Server) Configure(srv *fh.Server) {
	srv.KeepHijackedConns = true
	if srv.ReadTimeout == 0 && s.ws.Options().HandshakeTimeout > 0 {
		srv.ReadTimeout = s.ws.Options().HandshakeTimeout
	}
	if srv.IdleTimeout == 0 { // fasthttp would use ReadTimeout, the handshake's bound, for keep-alive idle too
		srv.IdleTimeout = conn.KeepAliveIdle
	}
	if srv.ReadBufferSize == 0 {
		srv.ReadBufferSize = s.ws.Options().MaxHeaderBytes
	}
	s.mu.Lock()
	s.keepHijacked = true
	s.mu.Unlock()
}

// Handler serves the router: its WebSocket routes through fasthttp's
// hijack, its pages through fasthttpadaptor (net/http handlers on
// fasthttp). Requests that reach no route of the router go to next, so the
// router can sit in front of an existing fasthttp application; with a nil
// next they get the router's answer (404, 405).
func (s *Server) Handler(next fh.RequestHandler) fh.RequestHandler {
	pages := fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ws.Serve(w, r, s.upgradeOnPagePath)
	}))
	return func(ctx *fh.RequestCtx) {
		switch s.ws.Route(routeRequest(ctx)) {
		case conn.WebSocketRoute:
			s.serveUpgrade(ctx)
		case conn.PageRoute:
			pages(ctx)
		default:
			if next != nil {
				next(ctx)
				return
			}
			pages(ctx) // the router's 404 or 405
		}
	}
}

// upgradeOnPagePath answers a WebSocket route reached through the page
// path: such a request is not an upgrade (426), as Route sent upgrades the
// other way.
func (s *Server) upgradeOnPagePath(w http.ResponseWriter, r *http.Request, h api.Handler) {
	s.ws.Upgrade(w, r, func() (conn.Transport, netip.AddrPort, error) {
		return nil, netip.AddrPort{}, errors.New("wsmatrix: fasthttp: an upgrade reached the page path")
	})
}

// routeRequest is the minimal request the router routes on: method, host,
// path and the Upgrade header. It runs on every request of an application
// behind Handler.
func routeRequest(ctx *fh.RequestCtx) *http.Request {
	u, _ := url.ParseRequestURI(string(ctx.RequestURI()))
	if u == nil {
		u = &url.URL{Path: "/"}
	}
	r := &http.Request{Method: string(ctx.Method()), URL: u, Host: string(ctx.Host()), Header: http.Header{}}
	for _, v := range ctx.Request.Header.PeekAll("Upgrade") {
		r.Header.Add("Upgrade", string(v))
	}
	return r
}

// serveUpgrade runs the router for a WebSocket route: middleware, then the
// upgrade or the refusal.
func (s *Server) serveUpgrade(ctx *fh.RequestCtx) {
	r, err := toRequest(ctx)
	if err != nil {
		ctx.Error("wsmatrix: bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w := conn.NewResponse()
	u := &upgrader{s: s, ctx: ctx}
	s.ws.Serve(w, r, u.upgrade)
	if u.upgraded {
		return
	}
	// Refused, by middleware or the handshake checks: their answer.
	for k, vs := range w.Header() {
		for _, v := range vs {
			ctx.Response.Header.Add(k, v)
		}
	}
	ctx.SetStatusCode(w.Status())
	ctx.SetBody(w.Body())
}

// toRequest copies everything a handler may read from ctx into a new
// *http.Request: fasthttp reuses ctx and its byte slices after the hijack.
func toRequest(ctx *fh.RequestCtx) (*http.Request, error) {
	rawURI := string(ctx.RequestURI())
	u, err := url.ParseRequestURI(rawURI)
	if err != nil {
		return nil, err
	}
	proto := string(ctx.Request.Header.Protocol())
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, fmt.Errorf("malformed protocol %q", proto)
	}
	h := make(http.Header, ctx.Request.Header.Len())
	for k, v := range ctx.Request.Header.All() {
		if string(k) == "Host" {
			continue // r.Host
		}
		h.Add(string(k), string(v)) // string() copies
	}
	host := string(ctx.Host())
	r := &http.Request{
		Method:     string(ctx.Method()),
		URL:        u,
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RemoteAddr: ctx.RemoteAddr().String(),
		RequestURI: rawURI,
		TLS:        ctx.TLSConnectionState(), // nil without TLS, as net/http has it
	}
	switch n := ctx.Request.Header.ContentLength(); { // what the head announced: CheckRequest refuses a body
	case n == -1, announcesCoding(ctx.Request.Header.RawHeaders()): // fasthttp forgets a chunked body it read as empty
		r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
	case n > 0:
		r.ContentLength = int64(n)
	}
	return r.WithContext(context.Background()), nil
}

type upgrader struct {
	s        *Server
	ctx      *fh.RequestCtx
	upgraded bool
}

// upgrade checks the handshake and hijacks the connection to serve h.
func (u *upgrader) upgrade(w http.ResponseWriter, r *http.Request, h api.Handler) {
	s, ctx := u.s, u.ctx
	raw := conn.Unwrap(ctx.Conn())
	// The 101 and the handler's frames go to the socket directly: with
	// HijackSetNoResponse fasthttp writes nothing more on it. Reading waits
	// for the hijack, which hands over what fasthttp buffered.
	//
	// Behind earlier requests on the connection, fasthttp may still hold
	// their answers (it writes pipelined answers together after the last):
	// the upgrade's writes then wait in held until the hijack, which
	// fasthttp runs once it has written them.
	var out net.Conn = raw
	var held *heldConn
	if ctx.ConnRequestNum() > 1 {
		held = &heldConn{Conn: raw}
		out = held
	}
	c := s.ws.Upgrade(w, r, func() (conn.Transport, netip.AddrPort, error) {
		u.upgraded = true
		return conn.NetTransport(out, s.ws.Options().WriteTimeout), conn.AddrPort(raw.RemoteAddr()), nil
	})
	if c == nil {
		return
	}
	s.mu.Lock()
	keep := s.keepHijacked
	s.mu.Unlock()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(hc net.Conn) {
		if held != nil && held.release() != nil {
			c.Gone(errors.New("wsmatrix: fasthttp: writing the upgrade's answer failed"))
			return
		}
		s.hijacked(c, hc, raw, keep)
	})
	go c.Run(h)
}

// heldConn keeps what is written to it until release, then writes it and
// everything after straight through.
type heldConn struct {
	net.Conn
	mu       sync.Mutex
	held     []byte
	released bool
}

func (h *heldConn) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.released {
		h.held = append(h.held, b...)
		return len(b), nil
	}
	return h.Conn.Write(b)
}

// release writes what was held; no Write overtakes it.
func (h *heldConn) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
	_, err := h.Conn.Write(h.held)
	h.held = nil
	return err
}

// hijacked runs once fasthttp gave the connection up: it reads frames.
func (s *Server) hijacked(c *conn.Conn, hc, raw net.Conn, keep bool) {
	prefix, err := drain(hc, raw)
	if err != nil {
		c.Gone(err)
		return
	}
	if keep {
		c.Attach(raw, prefix) // fasthttp releases its reader when we return
		return
	}
	c.ReadLoop(raw, prefix) // fasthttp closes the socket when we return
}

// drain takes the bytes fasthttp had read past the request (pipelined
// frames) out of its buffered reader, so that from now on the socket is
// read directly through one buffer.
func drain(hc, raw net.Conn) ([]byte, error) {
	var prefix []byte
	buf := make([]byte, 4096)
	raw.SetReadDeadline(time.Unix(1, 0)) // the reader returns what it buffered, then times out
	defer raw.SetReadDeadline(time.Time{})
	for {
		n, err := hc.Read(buf)
		prefix = append(prefix, buf[:n]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return prefix, nil
			}
			return nil, err
		}
		if len(prefix) > 1<<20 {
			return nil, errors.New("wsmatrix: fasthttp: more than 1 MiB buffered behind the request")
		}
	}
}

// Start listens on addr and serves in the background with its own
// fasthttp.Server, set up by Configure.
func (s *Server) Start(addr string) (net.Addr, error) {
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		return nil, errors.New("wsmatrix: fasthttp: already started")
	}
	if s.shut {
		s.mu.Unlock()
		return nil, errors.New("wsmatrix: fasthttp: Start after Shutdown: make a new server")
	}
	srv := &fh.Server{
		Handler:               s.Handler(nil),
		Name:                  "wsmatrix",
		NoDefaultServerHeader: true,
		// One request per WebSocket connection: idle workers go soon, and
		// the pool's cleaner notices a shutdown within this.
		MaxIdleWorkerDuration: 100 * time.Millisecond,
		Logger:                slog.NewLogLogger(s.ws.Options().Logger.Handler(), slog.LevelWarn),
	}
	l, err := conn.Listen(addr, s.ws.Options())
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("wsmatrix: fasthttp: %w", err)
	}
	l = conn.Listener(l, s.ws.Options()) // a client that stops reading a response is cut after WriteTimeout
	if s.ws.Options().TLSConfig != nil {
		l = tls.NewListener(l, s.ws.Options().TLSConfig)
	}
	s.srv, s.ln = srv, l
	s.mu.Unlock()
	s.Configure(srv)
	s.bg.Go(func() error { return srv.Serve(l) })
	return l.Addr(), nil
}

// Shutdown stops the server Start runs (fasthttp's own shutdown leaves
// hijacked connections alone), closes every WebSocket connection with 1001
// and waits for the handlers, up to ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.shut = true
	s.mu.Unlock()
	s.bg.Stopping()
	var errs []error
	if srv != nil {
		// fasthttp closes only the listeners its Serve has taken: right
		// after Start, Serve may not have begun, and would then serve
		// on. Closing the listener here stops it whenever it begins.
		ln.Close()
		s.stopOnce.Do(func() {
			if s.stopErr = srv.ShutdownWithContext(ctx); errors.Is(s.stopErr, net.ErrClosed) {
				s.stopErr = nil // the listener it closes again
			}
		})
		errs = append(errs, s.stopErr)
	}
	errs = append(errs, s.ws.Shutdown(ctx))
	s.bg.Wait()
	return errors.Join(errs...)
}

// announcesCoding reports whether a raw request head has a
// Transfer-Encoding line, whatever its value.
func announcesCoding(raw []byte) bool {
	for line := range bytes.Lines(raw) {
		if name, _, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Transfer-Encoding")) {
			return true
		}
	}
	return false
}
