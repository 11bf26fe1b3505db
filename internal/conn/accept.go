package conn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/hook"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// Hijack takes a connection over from the HTTP server that read the
// upgrade request: it returns the connection's transport and the peer's
// address. It is called once the upgrade is accepted, before anything is
// written.
type Hijack func() (Transport, netip.AddrPort, error)

// Upgrade is the accept sequence of every runtime. It checks r as a
// WebSocket upgrade (RFC 6455, then the origin and subprotocol policy of
// the options, then capacity) and writes a refusal through w; on success it
// takes the connection over with hijack, queues the 101 answer as the
// connection's first bytes and returns the connection. The runtime then
// feeds it input (ReadLoop, or Feed from an event loop) and calls Run, once.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request, hijack Hijack) *Conn {
	key, err := wire.CheckRequest(r)
	if err != nil {
		var he *wire.HandshakeError
		errors.As(err, &he)
		s.refuse(w, r, he, api.ReasonHandshake)
		return nil
	}
	if origin := r.Header.Get("Origin"); !s.originAllowed(r) {
		s.refuse(w, r, &wire.HandshakeError{Status: http.StatusForbidden, Msg: fmt.Sprintf(
			"origin %q is not allowed to open a WebSocket on %s: allow it with Options.OriginPatterns (wsmatrix serve --origins) or Options.CheckOrigin",
			origin, r.Host)}, api.ReasonOrigin)
		return nil
	}
	if refused := s.admit(); refused != "" {
		s.refuse(w, r, &wire.HandshakeError{Status: http.StatusServiceUnavailable,
			Header: http.Header{"Retry-After": {"1"}}, Msg: refused}, api.ReasonCapacity)
		return nil
	}
	t, remote, err := hijack()
	if err != nil {
		s.release()
		s.opts.Logger.Error("wsmatrix: hijack failed", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		http.Error(w, "wsmatrix: cannot upgrade this connection", http.StatusInternalServerError)
		return nil
	}
	proto := selectSubprotocol(r.Header, s.opts.Subprotocols)
	protoName := s.subprotocol(proto)
	var ext string
	var dfl *deflater
	if s.opts.Compression != api.CompressionOff {
		var d wire.Deflate
		var ok bool
		if ext, d, ok = wire.NegotiateDeflate(r.Header.Values("Sec-Websocket-Extensions"), s.opts.Compression == api.CompressionContextTakeover); ok {
			dfl = s.deflaterFor(d)
		}
	}
	return s.newConnAdmitted(t, detach(r), proto, remote, dfl, wire.AppendResponse(nil, key, protoName, ext))
}

// detach keeps what a handler may read of the request for the life of the
// connection: its values without its cancellation, no body, and its
// headers without those that only carried the handshake, in one
// allocation (a header map as read holds a string per value; an idle
// connection keeps it for hours).
func detach(r *http.Request) *http.Request {
	ctx := r.Context()
	hook.Rebase(ctx, servedValues)
	if parent, ok := hook.Parent(ctx); ok { // nothing but the router's hook was added
		ctx = parent
	}
	// net/http's request contexts (and servedValues' stand-in, which keeps
	// their Done channel for the middleware) are cancelled when the handler
	// returns: known without asking Done, which would make the context's
	// channel (96 bytes each connection keeps). Others may not be
	// cancellable.
	if ctx.Value(http.ServerContextKey) != nil || ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	r2 := r.WithContext(ctx)
	r2.Body = http.NoBody
	r2.GetBody = nil
	r2.Header = compactHeader(r.Header)
	return r2
}

// servedBase is the base context of HTTPServer's requests.
var servedBase = context.WithValue(context.Background(), servedKey{}, true)

type servedKey struct{}

// servedValues returns, for the context under the router's hook of a
// request HTTPServer's server read, one that holds its two values (the
// server, the local address) and its Done channel, and nothing else:
// net/http's contexts of the request and of its connection, with their
// map of children, are about 300 bytes that an open connection would
// keep only for those values. Middleware still running, and what it
// started, see the same Done channel, closed as before when ServeHTTP
// returns, and Err says Canceled from then on. It returns nil for any
// other context: values added under the hook (by a server of the user's
// own, with a BaseContext or ConnContext, or middleware around the
// runtime's handler) must stay.
func servedValues(ctx context.Context) context.Context {
	if ctx.Value(servedKey{}) == nil {
		return nil
	}
	srv, _ := ctx.Value(http.ServerContextKey).(*http.Server)
	return &servedCtx{srv: srv, local: ctx.Value(http.LocalAddrContextKey), done: ctx.Done()}
}

// servedCtx is what servedValues keeps.
type servedCtx struct {
	srv   *http.Server
	local any
	done  <-chan struct{}
}

func (*servedCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *servedCtx) Done() <-chan struct{}     { return c.done }
func (*servedCtx) String() string {
	return "context.Background.WithValue(net/http's server, local address).WithCancel"
}

func (c *servedCtx) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

func (c *servedCtx) Value(key any) any {
	switch key {
	case http.ServerContextKey:
		return c.srv
	case http.LocalAddrContextKey:
		return c.local
	}
	return nil
}

// handshakeOnly reports the request headers that only carry the handshake:
// they mean nothing once the connection is open.
func handshakeOnly(key string) bool {
	switch key {
	case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions":
		return true
	}
	return false
}

// compactHeader copies h without the handshake's own headers: the keys and
// values share one string, the value lists one slice.
func compactHeader(h http.Header) http.Header {
	kept := make([]string, 0, 16)
	values, size := 0, 0
	for k, vs := range h {
		if handshakeOnly(k) {
			continue
		}
		kept = append(kept, k)
		values += len(vs)
		size += len(k)
		for _, v := range vs {
			size += len(v)
		}
	}
	out := make(http.Header, len(kept))
	if len(kept) == 0 {
		return out
	}
	var b strings.Builder
	b.Grow(size)
	for _, k := range kept {
		b.WriteString(k)
		for _, v := range h[k] {
			b.WriteString(v)
		}
	}
	all, list := b.String(), make([]string, values)
	for _, k := range kept {
		vs := h[k]
		key := all[:len(k)]
		all = all[len(k):]
		for i, v := range vs {
			list[i] = all[:len(v)]
			all = all[len(v):]
		}
		out[key] = list[:len(vs):len(vs)]
		list = list[len(vs):]
	}
	return out
}

// refuse answers an upgrade that is not accepted, counts and logs it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, he *wire.HandshakeError, reason string) {
	for k, v := range he.Header {
		w.Header()[k] = v
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// The body is not read: net/http would read it (to reuse the
		// connection) before writing the answer, and wait as long as a
		// client trickles it.
		w.Header().Set("Connection", "close")
	}
	http.Error(w, he.Msg, he.Status)
	s.obs.Handshake(he.Status)
	s.obs.Refused(reason)
	s.logs.refused(s.opts.Logger, r, he.Status, reason, he.Msg)
}

// originAllowed applies CheckOrigin, or the same-host rule and
// OriginPatterns.
func (s *Server) originAllowed(r *http.Request) bool {
	if s.opts.CheckOrigin != nil {
		return s.opts.CheckOrigin(r)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	host := strings.ToLower(u.Host)
	for _, p := range s.opts.OriginPatterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// selectSubprotocol returns the first of the server's subprotocols that
// the client offers (among its first maxSubprotocols), as Conn.proto
// names it: 1 + its index, or 0 for none.
func selectSubprotocol(h http.Header, server []string) uint16 {
	if len(server) == 0 {
		return 0
	}
	server = server[:min(len(server), maxSubprotocols)]
	offered := h.Values("Sec-Websocket-Protocol")
	for i, s := range server {
		for _, v := range offered {
			for t := range strings.SplitSeq(v, ",") {
				if strings.TrimSpace(t) == s {
					return uint16(i + 1)
				}
			}
		}
	}
	return 0
}

// subprotocol is the name of the subprotocol selectSubprotocol chose.
func (s *Server) subprotocol(proto uint16) string {
	if proto == 0 {
		return ""
	}
	return s.opts.Subprotocols[proto-1]
}

// maxSubprotocols is the most of Options.Subprotocols a connection can
// name (Conn.proto).
const maxSubprotocols = 1<<16 - 1

// Serve runs the router (middleware, then a page or a WebSocket route)
// for r; its WebSocket routes reach upgrade, which the runtime implements
// with Upgrade. A panic in a handler, middleware or
// CheckOrigin is recovered: logged with its stack, counted, and answered
// 500 unless a response was already under way; the runtime goes on serving
// everyone else.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, upgrade func(http.ResponseWriter, *http.Request, api.Handler)) {
	if headSize(r) > s.opts.MaxHeaderBytes { // net/http reads 4 KiB past its limit: the same bound on every runtime
		w.Header().Set("Connection", "close")
		http.Error(w, "431 request header fields too large", http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	var hk hook.Hook
	if len(r.Header["Upgrade"]) > 0 { // a plain request never needs it: the router answers 426 itself
		hk = hook.WithUpgrade(r.Context(), func(w http.ResponseWriter, r *http.Request, h any) {
			upgrade(w, r, h.(api.Handler))
		})
		r = r.WithContext(hk)
	}
	rw := &recorder{ResponseWriter: w}
	defer func() {
		if hk != nil {
			hk.Served()
		}
		v := recover()
		if v == nil {
			return
		}
		if v != http.ErrAbortHandler { // net/http's way to abort a response quietly
			s.opts.Logger.Error("wsmatrix: panic serving request", "method", r.Method, "path", r.URL.Path,
				"remote", r.RemoteAddr, "panic", v, "stack", string(debug.Stack()))
			s.obs.Panicked()
		}
		if !rw.started {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
		}
	}()
	s.router.ServeHTTP(rw, r)
}

// headSize is the least r's head can have taken as sent: request line,
// Host and header lines at their shortest ("K:v", bare LF endings), so
// that no head under the limit is refused; at most a few bytes a line
// under the head's real size.
func headSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 1 + 1
	if r.Host != "" {
		n += len("Host:") + len(r.Host) + 1
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 1 + len(v) + 1
		}
	}
	return n
}

// Route reports which kind of route r reaches on the router, for runtimes
// that serve pages and sockets differently: NoRoute, WebSocketRoute or
// PageRoute.
func (s *Server) Route(r *http.Request) hook.Route { return hook.Classify(s.router, r) }

// The kinds of route Route reports.
const (
	NoRoute        = hook.NoRoute
	WebSocketRoute = hook.WebSocket
	PageRoute      = hook.Page
)

// recorder notes whether a response was started through it.
type recorder struct {
	http.ResponseWriter
	started bool
}

func (w *recorder) WriteHeader(code int) {
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the runtime's writer (Hijack,
// Flush).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on.
func (w *recorder) Flush() {
	w.started = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// HandshakeError is a refused request: status, headers and message.
type HandshakeError = wire.HandshakeError

// ReadRequest parses a request head at the start of b for runtimes that
// read raw bytes (see wire.ReadRequest).
func ReadRequest(b []byte, max int) (*http.Request, int, error) { return wire.ReadRequest(b, max) }
