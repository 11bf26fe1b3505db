package conn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// Conn implements api.Conn for every runtime.
type Conn struct {
	srv    *Server
	opts   *api.Options
	t      Transport
	req    *http.Request
	proto  string
	remote netip.AddrPort // a net.Addr is made only when asked for

	ctx    context.Context // made on first Context call
	cancel context.CancelFunc

	// Read side, owned by the goroutine or event loop that feeds input.
	parser   wire.Parser
	msg      []byte
	msgType  api.MessageType
	lastRead atomic.Int64 // unix nanoseconds of the last input

	// The inbox, guarded by mu: received messages waiting for the
	// handler. Its storage is dropped whenever it empties, so an idle
	// connection holds none.
	queue  []api.Message
	qhead  int
	inboxN atomic.Int32  // len(queue) - qhead, for Feed's lock-free check
	ready  chan struct{} // made by a waiting Receive; signalled on each message
	paused atomic.Bool   // Feed stopped on a full inbox
	space  chan struct{} // ReadLoop waits here while paused
	lw     LoopWriter    // the transport's in-loop writer, if any
	due    atomic.Int64  // unix nanoseconds when the clock should tick this conn

	// Close state.
	mu          sync.Mutex
	closing     bool            // the connection is ending: no more messages
	ending      atomic.Bool     // closing, readable without mu
	closeErr    *api.CloseError // what the handler is told
	peerClosed  bool            // the peer's close frame arrived
	finished    bool            // the socket is closed
	ended       chan struct{}   // made by a waiter; closed when finished
	closeTimer  *time.Timer
	pingSent    int64 // unix nanoseconds of the unanswered ping, or 0
	eventStyle  bool
	onMessage   func(api.Message)
	onClose     func(*api.CloseError)
	scheduled   bool // queued on, or running in, the event pool
	onCloseDone bool

	// Write side.
	wmu        sync.Mutex
	flushing   bool   // a goroutine is writing; others queue
	out        []byte // queued frames, guarded by wmu
	queued     int    // frames in out
	scratch    []byte // the flusher's buffer
	sendClosed bool   // a close frame was queued: no more frames
	closeAfter bool   // close the socket once the queue is written
	failed     bool   // input broke the protocol: half-close once the close frame is out
	roomWait   chan struct{}
}

func newConn(s *Server, t Transport, r *http.Request, proto string, remote netip.AddrPort) *Conn {
	c := &Conn{
		srv: s, opts: &s.opts, t: t, req: r, proto: proto, remote: remote,
	}
	c.lw, _ = t.(LoopWriter)
	if _, ok := t.(Resumer); !ok {
		c.space = make(chan struct{}, 1)
	}
	c.parser = *wire.NewParser(s.opts.ReadLimit)
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	c.due.Store(now.Add(c.nextTick(now)).UnixNano())
	return c
}

var _ api.Conn = (*Conn)(nil)

// Request returns the upgrade request.
func (c *Conn) Request() *http.Request { return c.req }

// Subprotocol returns the negotiated subprotocol.
func (c *Conn) Subprotocol() string { return c.proto }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// Context is done once the connection is ending. It is made on first use:
// a connection whose handler never asks holds none.
func (c *Conn) Context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(context.Background())
		if c.closing {
			c.cancel()
		}
	}
	return c.ctx
}

var closedCh = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// endedCh returns a channel closed once the socket is closed.
func (c *Conn) endedCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return closedCh
	}
	if c.ended == nil {
		c.ended = make(chan struct{})
	}
	return c.ended
}

// Run calls the handler, recovers its panic (close 1011) and closes the
// connection with 1000 when it returns, unless it chose the event style.
func (c *Conn) Run(h api.Handler) {
	defer c.srv.handlers.Done() // added by NewConn: Run is called once per connection
	if !c.protect(func() { h(c) }) {
		return
	}
	c.mu.Lock()
	keep := c.onMessage != nil || c.onClose != nil
	c.mu.Unlock()
	if !keep {
		c.Close(api.StatusNormalClosure, "")
	}
}

// protect runs f and turns a panic into close 1011; it reports whether f
// returned normally.
func (c *Conn) protect(f func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.opts.Logger.Error("wsmatrix: handler panic", "path", c.req.URL.Path, "panic", v, "stack", string(debug.Stack()))
			c.closeWith(api.StatusInternalError, "", false)
			ok = false
		}
	}()
	f()
	return true
}

// ---- receiving ----

// Receive returns the next message.
func (c *Conn) Receive() (api.Message, error) { return c.receive(nil, nil, false) }

// ReceiveTimeout returns the next message or ErrTimeout after d.
func (c *Conn) ReceiveTimeout(d time.Duration) (api.Message, error) {
	if d <= 0 {
		return c.receive(nil, nil, true)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	return c.receive(t.C, nil, false)
}

// ReceiveContext returns the next message or ctx.Err().
func (c *Conn) ReceiveContext(ctx context.Context) (api.Message, error) {
	return c.receive(nil, ctx, false)
}

func (c *Conn) receive(timeout <-chan time.Time, ctx context.Context, poll bool) (api.Message, error) {
	var cancel <-chan struct{}
	if ctx != nil {
		cancel = ctx.Done()
	}
	for {
		c.mu.Lock()
		if c.eventStyle {
			c.mu.Unlock()
			return api.Message{}, api.ErrEventStyle
		}
		if m, ok := c.popLocked(); ok { // messages received before the end are never lost
			c.mu.Unlock()
			c.took()
			return m, nil
		}
		if c.closing {
			err := c.closeErr
			c.mu.Unlock()
			return api.Message{}, err
		}
		if poll {
			c.mu.Unlock()
			return api.Message{}, api.ErrTimeout
		}
		if c.ready == nil {
			c.ready = make(chan struct{}, 1)
		}
		ready := c.ready
		c.mu.Unlock()
		select {
		case <-ready:
		case <-timeout:
			return api.Message{}, api.ErrTimeout
		case <-cancel:
			return api.Message{}, ctx.Err()
		}
	}
}

// full reports whether the inbox holds InboxSize messages.
func (c *Conn) full() bool { return int(c.inboxN.Load()) >= c.opts.InboxSize }

// popLocked takes the oldest message of the inbox.
func (c *Conn) popLocked() (api.Message, bool) {
	if c.qhead == len(c.queue) {
		return api.Message{}, false
	}
	m := c.queue[c.qhead]
	c.queue[c.qhead] = api.Message{}
	c.qhead++
	if c.qhead == len(c.queue) {
		c.queue, c.qhead = c.queue[:0], 0
		if cap(c.queue) > 4 {
			c.queue = nil // a burst's storage is not kept by an idle connection
		}
	}
	c.inboxN.Add(-1)
	return m, true
}

// took tells a paused reader there is room in the inbox again.
func (c *Conn) took() {
	if !c.paused.CompareAndSwap(true, false) {
		return
	}
	if r, ok := c.t.(Resumer); ok {
		r.Resume()
		return
	}
	select {
	case c.space <- struct{}{}:
	default:
	}
}

func (c *Conn) endedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return c.closeErr
	}
	return nil
}

// ---- event style ----

// OnMessage switches to event style.
func (c *Conn) OnMessage(fn func(api.Message)) {
	c.mu.Lock()
	c.onMessage, c.eventStyle = fn, fn != nil
	c.scheduleLocked()
	c.mu.Unlock()
}

// OnClose registers fn to run once when the connection ends.
func (c *Conn) OnClose(fn func(*api.CloseError)) {
	c.mu.Lock()
	c.onClose = fn
	c.scheduleLocked()
	c.mu.Unlock()
}

// scheduleLocked queues the connection on the event pool when it has
// something for its callbacks.
func (c *Conn) scheduleLocked() {
	if c.scheduled {
		return
	}
	if (c.onMessage != nil && c.qhead < len(c.queue)) || (c.onClose != nil && c.closing && !c.onCloseDone) {
		c.scheduled = true
		c.srv.pool.schedule(c)
	}
}

// runEvents delivers up to a batch of messages, then OnClose once the
// connection has ended and the inbox is empty. It runs on the pool.
func (c *Conn) runEvents() (again bool) {
	for range 64 {
		c.mu.Lock()
		fn := c.onMessage
		var m api.Message
		ok := fn != nil
		if ok {
			m, ok = c.popLocked()
		}
		c.mu.Unlock()
		if !ok {
			break
		}
		c.took()
		if !c.protect(func() { fn(m) }) {
			return c.reschedule()
		}
	}
	c.mu.Lock()
	var onClose func(*api.CloseError)
	if c.closing && c.onClose != nil && !c.onCloseDone && (c.onMessage == nil || c.qhead == len(c.queue)) {
		c.onCloseDone = true
		onClose = c.onClose
	}
	c.mu.Unlock()
	if onClose != nil {
		c.protect(func() { onClose(c.closeErr) })
	}
	return c.reschedule()
}

func (c *Conn) reschedule() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	more := (c.onMessage != nil && c.qhead < len(c.queue)) || (c.onClose != nil && c.closing && !c.onCloseDone)
	if !more {
		c.scheduled = false
	}
	return more
}

// ---- input ----

// ReadBufferSize is the size of ReadLoop's buffers.
const ReadBufferSize = 4096

var readBufs = sync.Pool{New: func() any { b := make([]byte, ReadBufferSize); return &b }}

// ReadLoop reads from r until the connection ends, for runtimes with a
// blocking socket. prefix holds bytes already read past the upgrade
// request. While the inbox is full it stops reading, which pushes back on
// the peer through TCP.
//
// On a socket (syscall.Conn) an idle connection holds no read buffer: it
// waits for readability through the runtime poller and borrows a pooled
// buffer only for the read itself and for an incomplete frame.
func (c *Conn) ReadLoop(r io.Reader, prefix []byte) {
	if sc, ok := r.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.readRaw(rc, prefix)
			return
		}
	}
	buf := make([]byte, max(ReadBufferSize, len(prefix)+wire.MinBuffer))
	n := copy(buf, prefix)
	for {
		var stop bool
		if n, stop = c.feedBuffered(buf, n); stop {
			return
		}
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			c.Feed(buf[:n])
			c.Gone(err)
			return
		}
	}
}

// feedBuffered feeds buf[:n] until it is consumed or an incomplete frame
// is left, waiting while the inbox is full; it returns the bytes left,
// moved to the front of buf.
func (c *Conn) feedBuffered(buf []byte, n int) (int, bool) {
	for n > 0 {
		used, full := c.Feed(buf[:n])
		n = copy(buf, buf[used:n])
		if !full {
			break
		}
		<-c.space // room again, or the connection is ending (Feed then drops data)
	}
	if n == len(buf) { // cannot happen: Feed always consumes a MinBuffer
		c.abort("read buffer stuck")
		return n, true
	}
	return n, false
}

func (c *Conn) readRaw(rc syscall.RawConn, prefix []byte) {
	var big *[]byte // the borrowed buffer, nil while idle
	defer func() {
		if big != nil && cap(*big) == ReadBufferSize {
			readBufs.Put(big)
		}
	}()
	n := 0
	if len(prefix) > 0 {
		b := make([]byte, max(ReadBufferSize, len(prefix)+wire.MinBuffer))
		big = &b
		n = copy(b, prefix)
	}
	for {
		if big != nil {
			var stop bool
			if n, stop = c.feedBuffered(*big, n); stop {
				return
			}
			if n == 0 && cap(*big) == ReadBufferSize { // nothing pending: give it back while waiting
				readBufs.Put(big)
				big = nil
			}
		}
		var k int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			if big == nil {
				big = readBufs.Get().(*[]byte)
			}
			for {
				k, rerr = syscall.Read(int(fd), (*big)[n:])
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				if n == 0 {
					readBufs.Put(big)
					big = nil
				}
				return false // wait for readability, holding no buffer
			}
			return true
		})
		switch {
		case err != nil:
			rerr = err
		case rerr == nil && k == 0:
			rerr = io.EOF
		}
		if k > 0 {
			n += k
		}
		if rerr != nil {
			if big != nil && n > 0 {
				c.Feed((*big)[:n])
			}
			c.Gone(rerr)
			return
		}
	}
}

// Feed parses input and acts on it: messages go to the inbox, pings are
// answered, close frames complete the handshake, protocol errors close the
// connection with their code. It returns how many bytes it used; the rest
// is an incomplete frame to be fed again with more bytes. full reports that
// it stopped because the inbox is full: feed the rest once the handler
// took a message.
func (c *Conn) Feed(b []byte) (used int, full bool) {
	if len(b) > 0 {
		c.lastRead.Store(time.Now().UnixNano()) // for keepalive: the peer is alive
	}
	for {
		// While ending, data is dropped, so a full inbox must not stop the
		// reader from seeing the peer's close frame.
		if c.full() && !c.ending.Load() {
			c.paused.Store(true)
			// The handler may have taken a message before paused was set.
			if c.full() || !c.paused.CompareAndSwap(true, false) {
				return used, true
			}
		}
		ev, n, err := c.parser.Parse(b[used:])
		used += n
		if err != nil {
			var ce *api.CloseError
			errors.As(err, &ce)
			c.wmu.Lock()
			c.failed = true
			c.wmu.Unlock()
			c.closeWith(ce.Code, ce.Reason, true)
			return len(b), false // discard the rest until the socket closes
		}
		switch ev.Kind {
		case wire.None:
			if n == 0 {
				return used, false
			}
		case wire.Data:
			if ev.First {
				c.msgType = ev.Type
				c.msg = make([]byte, 0, min(ev.FrameLen, 64<<10))
			}
			c.msg = append(c.msg, ev.Payload...)
			if ev.Fin {
				c.deliver(api.Message{Type: c.msgType, Data: c.msg})
				c.msg = nil
			}
		case wire.Ping:
			c.sendFrame(wire.OpPong, ev.Payload, false, true)
		case wire.Pong:
			// any input proves the peer alive: lastRead is enough
		case wire.Close:
			c.peerClose(ev.Code, ev.Reason, true)
			return len(b), false
		}
	}
}

func (c *Conn) deliver(m api.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return // after our close frame, data is dropped (RFC 6455 5.5.1)
	}
	if c.queue == nil {
		c.queue = make([]api.Message, 0, min(c.opts.InboxSize, 4))
	}
	c.queue = append(c.queue, m) // within InboxSize: Feed checked for room and is the only sender
	c.inboxN.Add(1)
	if o := c.opts.Observer; o != nil {
		o.Received(len(m.Data))
	}
	if c.ready != nil {
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
	c.scheduleLocked()
}

// ---- sending ----

// Send sends m.
func (c *Conn) Send(m api.Message) error {
	switch m.Type {
	case api.Text:
		return c.sendFrame(wire.OpText, m.Data, true, false)
	case api.Binary:
		return c.sendFrame(wire.OpBinary, m.Data, true, false)
	}
	return fmt.Errorf("wsmatrix: Send: invalid message type %d", m.Type)
}

// SendText sends a text message.
func (c *Conn) SendText(s string) error { return c.sendFrame(wire.OpText, []byte(s), true, false) }

// SendBinary sends a binary message.
func (c *Conn) SendBinary(p []byte) error { return c.sendFrame(wire.OpBinary, p, true, false) }

const bigFrame = 64 << 10 // payloads larger than this are written without a copy

// sendFrame writes a frame, or queues it behind the frames of a concurrent
// sender, which then writes it. Order is the order of the calls; frames
// never interleave. data is false for control frames: they are queued even
// past the bound rather than waited for. loop is true when called from Feed,
// which must not block on an event loop.
func (c *Conn) sendFrame(op ws.OpCode, p []byte, data, loop bool) error {
	c.wmu.Lock()
	for c.flushing {
		if c.sendClosed {
			c.wmu.Unlock()
			return c.sendErr()
		}
		if c.queued < c.opts.SendQueueSize || !data {
			c.out = wire.AppendFrame(c.out, op, p)
			c.queued++
			c.wmu.Unlock()
			if o := c.opts.Observer; o != nil && data {
				o.Sent(len(p))
			}
			return nil
		}
		if o := c.opts.Observer; o != nil {
			o.QueueFull()
		}
		if c.opts.SendQueueFull == api.QueueClose {
			c.wmu.Unlock()
			c.closeWith(api.StatusPolicyViolation, "send queue full", false)
			return fmt.Errorf("wsmatrix: send: %w (connection closed with 1008)", api.ErrQueueFull)
		}
		if c.roomWait == nil {
			c.roomWait = make(chan struct{})
		}
		wait := c.roomWait
		c.wmu.Unlock()
		if !c.waitRoom(wait) {
			c.closeWith(api.StatusPolicyViolation, "send queue full", false)
			return fmt.Errorf("wsmatrix: send: %w for %v (connection closed with 1008)", api.ErrQueueFull, c.opts.WriteTimeout)
		}
		c.wmu.Lock()
	}
	if c.sendClosed {
		c.wmu.Unlock()
		return c.sendErr()
	}
	c.flushing = true
	c.wmu.Unlock()
	if o := c.opts.Observer; o != nil && data {
		o.Sent(len(p))
	}

	var err error
	if len(p) > bigFrame {
		c.scratch = wire.AppendHeader(c.scratch[:0], op, len(p))
		if err = c.write(c.scratch, loop); err == nil {
			err = c.write(p, loop)
		}
	} else {
		c.scratch = wire.AppendFrame(c.scratch[:0], op, p)
		err = c.write(c.scratch, loop)
	}
	return c.flush(err, loop)
}

// LoopWriter is implemented by transports of event-loop runtimes, whose
// Write waits for the loop: WriteInLoop writes from the loop itself (from
// within Feed) without waiting.
type LoopWriter interface {
	WriteInLoop(b []byte) error
}

// Resumer is implemented by transports of event-loop runtimes: Resume
// asks the loop to feed the connection again after Feed reported a full
// inbox. Other transports are fed by ReadLoop.
type Resumer interface {
	Resume()
}

func (c *Conn) write(b []byte, loop bool) error {
	if loop && c.lw != nil {
		return c.lw.WriteInLoop(b)
	}
	return c.t.Write(b)
}

func (c *Conn) waitRoom(wait chan struct{}) bool {
	ended := c.endedCh()
	if c.opts.WriteTimeout <= 0 {
		select {
		case <-wait:
			return true
		case <-ended:
			return true // the loop then reports the close
		}
	}
	t := time.NewTimer(c.opts.WriteTimeout)
	defer t.Stop()
	select {
	case <-wait:
		return true
	case <-ended:
		return true
	case <-t.C:
		return false
	}
}

// flush writes what others queued while this goroutine held the writer
// role, then gives the role up.
func (c *Conn) flush(err error, loop bool) error {
	for {
		if err != nil {
			c.wmu.Lock()
			c.flushing = false
			c.sendClosed = true
			c.wmu.Unlock()
			c.abort("write: " + err.Error())
			return c.sendErr()
		}
		c.wmu.Lock()
		if c.roomWait != nil {
			close(c.roomWait)
			c.roomWait = nil
		}
		if len(c.out) == 0 {
			c.flushing = false
			closeAfter := c.closeAfter && c.sendClosed
			halfClose := c.failed && c.sendClosed
			if cap(c.scratch) > bigFrame {
				c.scratch = nil
			}
			c.wmu.Unlock()
			if closeAfter {
				c.finish()
			} else if hc, ok := c.t.(interface{ CloseWrite() error }); ok && halfClose {
				// The peer's answer cannot be parsed after a protocol error:
				// end our side so it sees EOF, and read until its EOF.
				hc.CloseWrite()
			}
			return nil
		}
		c.scratch, c.out = c.out, c.scratch[:0]
		c.queued = 0
		c.wmu.Unlock()
		err = c.write(c.scratch, loop)
	}
}

func (c *Conn) sendErr() error {
	if err := c.endedErr(); err != nil {
		return err
	}
	return &api.CloseError{Code: api.StatusAbnormalClosure, Reason: "connection closed"}
}

// ---- closing ----

// Close starts the closing handshake and waits, at most CloseTimeout, for
// the connection to end.
func (c *Conn) Close(code api.StatusCode, reason string) error {
	if err := wire.CheckClose(code, reason); err != nil {
		return fmt.Errorf("wsmatrix: Close: %w", err)
	}
	c.closeWith(code, reason, false)
	<-c.endedCh() // bounded: closeWith arms CloseTimeout
	return nil
}

// begin marks the connection as ending with ce; it reports false when it
// was already ending.
func (c *Conn) begin(ce *api.CloseError) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.closing, c.closeErr = true, ce
	c.ending.Store(true)
	c.scheduleLocked()
	if c.ready != nil {
		close(c.ready) // wakes every waiting Receive; nothing is sent after closing
		c.ready = closedCh
	}
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if c.space != nil { // a paused ReadLoop reads on: data is dropped now
		select {
		case c.space <- struct{}{}:
		default:
		}
	}
	return true
}

// closeWith sends a close frame with code and ends the connection once the
// peer answers or CloseTimeout passes.
func (c *Conn) closeWith(code api.StatusCode, reason string, loop bool) {
	if !c.begin(&api.CloseError{Code: code, Reason: reason}) {
		return
	}
	c.mu.Lock()
	if !c.finished {
		c.closeTimer = time.AfterFunc(c.opts.CloseTimeout, func() { c.abortQuiet() })
	}
	c.mu.Unlock()
	c.queueClose(code, reason, false, loop)
}

// peerClose handles the peer's close frame: answer it, then close the
// socket (the server closes TCP first, RFC 6455 7.1.1).
func (c *Conn) peerClose(code api.StatusCode, reason string, loop bool) {
	c.mu.Lock()
	c.peerClosed = true
	c.mu.Unlock()
	if c.begin(&api.CloseError{Code: code, Reason: reason}) {
		c.queueClose(code, "", true, loop)
		return
	}
	// Our close frame was sent first: this is the answer.
	c.wmu.Lock()
	written := c.sendClosed && !c.flushing
	c.closeAfter = true
	c.wmu.Unlock()
	if written {
		c.finish()
	}
}

// queueClose sends the close frame as the last frame.
func (c *Conn) queueClose(code api.StatusCode, reason string, thenFinish, loop bool) {
	c.wmu.Lock()
	if c.sendClosed {
		c.wmu.Unlock()
		return
	}
	c.closeAfter = c.closeAfter || thenFinish
	if c.flushing {
		c.out = wire.AppendClose(c.out, code, reason)
		c.sendClosed = true
		c.wmu.Unlock()
		return
	}
	c.sendClosed = true
	c.flushing = true
	c.wmu.Unlock()
	c.scratch = wire.AppendClose(c.scratch[:0], code, reason)
	c.flush(c.write(c.scratch, loop), loop)
}

// Gone tells the connection its socket ended (EOF, reset, closed) without
// a close handshake; the handler sees 1006. It may be called more than once.
func (c *Conn) Gone(err error) {
	c.begin(&api.CloseError{Code: api.StatusAbnormalClosure, Reason: "connection lost: " + err.Error()})
	c.finish()
}

// Fail closes the connection with code, from the goroutine or loop that
// feeds it (for limits the runtime enforces, such as a buffer bound).
func (c *Conn) Fail(code api.StatusCode, reason string) { c.closeWith(code, reason, true) }

// abort cuts the connection without a close handshake.
func (c *Conn) abort(why string) {
	c.begin(&api.CloseError{Code: api.StatusAbnormalClosure, Reason: why})
	c.finish()
}

func (c *Conn) abortQuiet() { c.abort("close handshake timed out") }

// finish closes the socket once; the connection has ended.
func (c *Conn) finish() {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	if c.ended != nil {
		close(c.ended)
	}
	c.mu.Unlock()
	c.wmu.Lock()
	c.sendClosed = true // nothing more is written to a closed socket
	c.wmu.Unlock()
	c.t.Close()
	if o := c.opts.Observer; o != nil && c.closeErr != nil {
		o.Closed(c.closeErr.Code)
	}
	c.srv.forget(c)
}

// ---- keepalive ----

// nextTick is how long until the keepalive state of c can change.
func (c *Conn) nextTick(now time.Time) time.Duration {
	last := time.Unix(0, c.lastRead.Load())
	next := time.Duration(1<<63 - 1)
	if c.opts.PingInterval > 0 {
		if c.pingSent != 0 {
			next = min(next, time.Unix(0, c.pingSent).Add(c.opts.PongTimeout).Sub(now))
		} else {
			next = min(next, last.Add(c.opts.PingInterval).Sub(now))
		}
	}
	if c.opts.IdleTimeout > 0 {
		next = min(next, last.Add(c.opts.IdleTimeout).Sub(now))
	}
	return max(next, time.Millisecond)
}

// tick sends pings, drops peers that stopped answering and closes idle
// connections. The server's clock calls it once c.due has passed.
func (c *Conn) tick(now time.Time) {
	last := c.lastRead.Load()
	c.mu.Lock()
	if c.closing || c.finished {
		c.mu.Unlock()
		return
	}
	if c.pingSent != 0 && last > c.pingSent {
		c.pingSent = 0
	}
	idle := now.Sub(time.Unix(0, last))
	var ping, dead, idleOut bool
	switch {
	case c.opts.IdleTimeout > 0 && idle >= c.opts.IdleTimeout:
		idleOut = true
	case c.pingSent != 0 && now.Sub(time.Unix(0, c.pingSent)) >= c.opts.PongTimeout:
		dead = true
	case c.opts.PingInterval > 0 && c.pingSent == 0 && idle >= c.opts.PingInterval:
		ping = true
		c.pingSent = now.UnixNano()
	}
	c.due.Store(now.Add(c.nextTick(now)).UnixNano())
	c.mu.Unlock()
	switch {
	case idleOut:
		c.closeWith(api.StatusGoingAway, "idle timeout", false)
	case dead:
		c.abort("no answer to ping")
	case ping:
		c.sendFrame(wire.OpPing, nil, false, false)
	}
}
