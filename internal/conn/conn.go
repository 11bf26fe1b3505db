package conn

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// Conn implements api.Conn for every runtime. Its concerns live in files
// named after them: read.go (input, parsing, the pause rule), receive.go
// (the inbox and Receive), event.go (event style on the pool), write.go
// (Send, the queue and its budget), close.go (the state and the close
// handshake), keepalive.go (pings and idle timeouts).
type Conn struct {
	srv    *Server
	t      Transport
	req    atomic.Pointer[http.Request] // nil once packed into kept
	kept   atomic.Pointer[keptRequest]  // set once the handler waits for messages (see keptRequest)
	remote netip.AddrPort               // a net.Addr is made only when asked for
	dfl    *deflater                    // permessage-deflate, when negotiated

	// Read side, owned by the goroutine or event loop that feeds input.
	// (Fields are ordered for size: an idle connection is mostly this
	// struct, and the small ones share words.)
	parser        wire.Parser
	msg           []byte       // the message being received
	lastRead      atomic.Int64 // unix nanoseconds of the last input (any frame: the peer is alive)
	lastData      atomic.Int64 // unix nanoseconds of the last data frame (the peer is not idle)
	due           atomic.Int64 // unix nanoseconds when the clock should tick this conn
	rd            *reader      // the read side on a blocking socket (nil on event loops)
	msgType       api.MessageType
	msgCompressed bool
	proto         uint16 // the subprotocol: 1 + its index in Options.Subprotocols, or 0
	flags         flags  // paused, inEvent, ending, pongHeld

	// Lock-free mirrors for Feed's pause rule.
	inBytes atomic.Int64 // bytes in the inbox
	inN     atomic.Int32 // messages in the inbox
	waiting atomic.Int32 // the handler waits for a message: parked receivers, or an idle event-style conn

	mu         sync.Mutex
	state      state
	peerClosed bool         // the peer's close frame arrived
	busy       bool         // the handler took a message and has not come back for the next
	end        *endState    // made once the connection drains or closes, or someone waits for its end
	cx         *connContext // made on first Context call
	pingSent   int64        // unix nanoseconds of the unanswered ping, or 0
	inbox      inbox
	ready      chan struct{} // one token: wakes a parked Receive
	ev         events

	wmu sync.Mutex
	w   writer
}

// flags are a connection's atomic booleans, in one word.
type flags struct{ v atomic.Uint32 }

// The flags.
const (
	paused    uint32 = 1 << iota // Feed stopped: the inbox is over its bounds
	inEvent                      // a pool worker runs this connection's callback
	ending                       // state >= stClosing
	pongHeld                     // a pong waits for the send queue to go under its budget
	onMessage                    // OnMessage was called: event style
)

func (f *flags) has(b uint32) bool { return f.v.Load()&b != 0 }

func (f *flags) set(b uint32, on bool) {
	if on {
		f.v.Or(b)
	} else {
		f.v.And(^b)
	}
}

// clear clears b and reports whether it was set.
func (f *flags) clear(b uint32) bool { return f.v.And(^b)&b != 0 }

func newConn(s *Server, t Transport, r *http.Request, proto uint16, remote netip.AddrPort, dfl *deflater) *Conn {
	c := &Conn{srv: s, t: t, proto: proto, remote: remote, dfl: dfl}
	c.req.Store(r)
	if _, ok := t.(Resumer); !ok {
		c.rd = &reader{}
	}
	c.parser = *wire.NewParser(s.opts.ReadLimit, dfl != nil)
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	c.lastData.Store(now.UnixNano())
	c.due.Store(now.Add(c.nextTick(now)).UnixNano())
	return c
}

var _ api.Conn = (*Conn)(nil)

// Request returns the upgrade request. Once the handler waits for
// messages, the connection keeps it packed (keptRequest) and rebuilds it on
// first use.
func (c *Conn) Request() *http.Request {
	if r := c.req.Load(); r != nil {
		return r
	}
	r := c.kept.Load().request(c.remote)
	if c.req.CompareAndSwap(nil, r) {
		return r
	}
	return c.req.Load()
}

// requestContext is the upgrade request's context, packed or not.
func (c *Conn) requestContext() context.Context {
	if r := c.req.Load(); r != nil {
		return r.Context()
	}
	return c.kept.Load().ctx
}

// path is the upgrade request's URL path, for logs.
func (c *Conn) path() string {
	if r := c.req.Load(); r != nil {
		return r.URL.EscapedPath() // as the packed request has it
	}
	return c.kept.Load().path()
}

// packRequest keeps the upgrade request packed until it is asked for.
func (c *Conn) packRequest() {
	if r := c.req.Load(); r != nil {
		c.kept.Store(keepRequest(r, c.remote))
		c.req.CompareAndSwap(r, nil)
	}
}

// Subprotocol returns the negotiated subprotocol.
func (c *Conn) Subprotocol() string { return c.srv.subprotocol(c.proto) }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// Context is done once the connection is ending. It carries the values of
// the request's context (what middleware put there), not its
// cancellation. It is made on first use: a connection whose handler never
// asks holds none.
func (c *Conn) Context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cx == nil {
		ctx, cancel := context.WithCancel(context.WithoutCancel(c.requestContext()))
		c.cx = &connContext{ctx: ctx, cancel: cancel}
		if c.state >= stClosing {
			cancel()
		}
	}
	return c.cx.ctx
}

// connContext is the connection's context and its cancel, made together
// when a handler first asks (one word in Conn instead of three).
type connContext struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// Run calls the handler, recovers its panic (close 1011) and closes the
// connection with 1000 when it returns, unless it chose the event style.
// After a protocol error, the close carries that error's code instead.
//
// The handler is called from this small frame, with the rest in a
// deferred call: a blocking handler reads and parses its socket in its own
// goroutine, and every byte above it is a byte less before its 2 KiB stack
// has to grow.
func (c *Conn) Run(h api.Handler) {
	defer c.handlerReturned()
	h(c)
}

// handlerReturned runs when Run's handler returned or panicked.
func (c *Conn) handlerReturned() {
	defer c.srv.handlers.Done() // added by NewConn: Run is called once per connection
	if v := recover(); v != nil {
		c.panicked(v)
		return
	}
	if c.rd != nil && c.rd.inHand.CompareAndSwap(handHandler, 0) { // what it corked goes out
		c.uncork()
	}
	c.mu.Lock()
	keep := c.ev.onMessage != nil || c.ev.onClose != nil
	fail := c.failLocked()
	c.mu.Unlock()
	switch {
	case keep:
		c.packRequest()
	case fail != nil: // draining: nobody takes what is left
		c.endDrain()
		<-c.endedCh()
	default:
		c.Close(api.StatusNormalClosure, "")
	}
}

// protect runs f and turns a panic into close 1011, logged with its stack
// and counted; it reports whether f returned normally.
func (c *Conn) protect(f func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.panicked(v)
			ok = false
		}
	}()
	f()
	return true
}

// panicked logs a handler's or callback's panic with its stack, counts it
// and closes with 1011.
func (c *Conn) panicked(v any) {
	c.srv.opts.Logger.Error("wsmatrix: handler panic", "path", c.path(), "remote", c.remote.String(), "panic", v, "stack", string(debug.Stack()))
	c.srv.obs.Panicked()
	c.closeWith(api.StatusInternalError, "")
}
