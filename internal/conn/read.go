package conn

import (
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/msgbuf"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// ReadBufferSize is the size of a blocking socket's read buffers.
const ReadBufferSize = 4096

// readBufs pools the read buffers of blocking sockets: a connection holds
// one only while input waits to be fed.
var readBufs sync.Pool // of *[]byte

// errNoReadBuffer: readFd found readBufs empty. fill allocates the buffer
// and reads again, rather than readFd under RawConn.Read: a blocking
// handler reads its own socket, and an allocation (which may sweep or
// assist the GC) that deep under it doubled its 2 KiB stack.
var errNoReadBuffer = errors.New("wsmatrix: no read buffer")

// reader is the read side of a connection on a blocking socket. On a raw
// socket (syscall.Conn) whoever holds role reads: a blocking handler that
// waits in Receive reads the socket itself, as gorilla's handlers do (one
// goroutine per connection, no hand-off per message); while the handler
// is away for longer than awayGrace, or in event style, or while the
// connection closes, a helper goroutine reads instead, so pings are
// answered and closes completed while a handler is busy. An idle
// connection holds no read buffer: it waits for readability through the
// runtime poller and borrows a pooled buffer for the read itself and for
// an incomplete frame.
type reader struct {
	role  sync.Mutex                    // held by whoever reads the socket and feeds what it read
	space atomic.Pointer[chan struct{}] // a paused helper waits here (room); made on the first pause

	// Guarded by role.
	r     io.Reader
	rc    syscall.RawConn // nil: no raw access (TLS): a helper reads all along
	buf   *[]byte         // the borrowed buffer, nil while idle
	n     int             // bytes in buf not fed yet (an incomplete frame, or input while paused)
	k     int             // what readFd read
	rerr  error           // and the error it got
	ended bool            // the socket failed or ended: nobody reads any more
	kept  bool            // adopt refused the socket: a helper reads it for good

	// Set by Attach before attached, read-only after.
	direct   bool                  // a raw socket with read deadlines: receivers read it themselves
	read     func(fd uintptr) bool // rd.readFd, made once: a closure per read would cost three allocations
	away     *time.Timer           // starts a helper once the handler stays away from Receive (direct only)
	attached atomic.Bool
	helping  atomic.Bool   // a helper goroutine runs
	yield    atomic.Bool   // a receiver asks the helper to give the role up
	inHand   atomic.Uint32 // handHandler, handEvents: a message is being handled and Sends may be corked (see corks)
}

// room is the channel a paused helper waits on for room in the inbox. It
// is made on first use: most connections never pause.
func (rd *reader) room() chan struct{} {
	if p := rd.space.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{}, 1)
	if rd.space.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *rd.space.Load()
}

// deadline sets the socket's read deadline, if it has one.
func (rd *reader) deadline(t time.Time) {
	if d, ok := rd.r.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(t)
	}
}

// awayGrace is how long a blocking handler may stay away from Receive
// before a helper goroutine reads for it.
const awayGrace = 20 * time.Millisecond

// ReadLoop reads from r until the connection ends, for runtimes with a
// blocking socket that must hold their goroutine until then. prefix holds
// bytes already read past the upgrade request.
func (c *Conn) ReadLoop(r io.Reader, prefix []byte) {
	c.Attach(r, prefix)
	<-c.endedCh()
}

// Attach gives the connection its blocking socket r; prefix holds bytes
// already read past the upgrade request. It returns at once: the handler
// reads in Receive, and a helper goroutine when the handler is away, in
// event style, or while the connection closes. While the inbox is over
// its bounds the helper stops reading, which pushes back on the peer
// through TCP.
func (c *Conn) Attach(r io.Reader, prefix []byte) {
	rd := c.rd
	rd.role.Lock()
	rd.r = r
	if sc, ok := r.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rd.rc = rc
		}
	}
	_, dl := r.(interface{ SetReadDeadline(time.Time) error })
	if len(prefix) > 0 {
		b := make([]byte, max(ReadBufferSize, len(prefix)+wire.MinBuffer))
		rd.buf = &b
		rd.n = copy(b, prefix)
	}
	rd.direct = rd.rc != nil && dl
	if rd.rc != nil {
		rd.read = rd.readFd
	}
	pending := rd.n > 0
	if rd.direct {
		// Made stopped: it must not fire before attached is set.
		rd.away = time.AfterFunc(time.Hour, c.awayFired)
		rd.away.Stop()
	}
	rd.role.Unlock()
	rd.attached.Store(true)
	if !rd.direct || pending || c.flags.has(onMessage) {
		c.help() // no direct reads here, frames already wait, or event style came first (fasthttp runs the handler before the hijack)
		return
	}
	// Unless the handler reads first (takeReadRole stops the timer), a
	// helper reads once awayGrace passes.
	rd.away.Reset(awayGrace)
	c.mu.Lock()
	c.wakeOneLocked() // a Receive that came first reads now
	c.mu.Unlock()
}

// helpNow starts a helper that no receiver's hand-over request can send
// away: the connection is closing or in event style, and someone must read.
func (c *Conn) helpNow() {
	if c.rd != nil {
		c.rd.yield.Store(false)
		c.help()
	}
}

// help starts a helper goroutine unless one runs or the socket ended.
func (c *Conn) help() {
	rd := c.rd
	if rd == nil || !rd.attached.Load() || !rd.helping.CompareAndSwap(false, true) {
		return
	}
	if rd.direct && !c.w.corked.Load() {
		rd.away.Stop() // a helper reads: the timer would only start a goroutine to find that out (corked: it bounds the cork)
	}
	go c.helper()
}

// helper reads for the connection until the socket ends, or a receiver
// takes the role over.
func (c *Conn) helper() {
	rd := c.rd
	for {
		rd.role.Lock()
		ended := rd.ended
		if ended || (rd.yield.Load() && rd.direct && !c.flags.has(ending) && !c.eventStyle()) {
			rd.role.Unlock()
			rd.helping.Store(false)
			c.mu.Lock()
			c.wakeOneLocked() // the receiver that asked reads now
			c.mu.Unlock()
			// Asked for again meanwhile (a close or event style cleared or
			// overrides the hand-over request after help() found this one
			// still running).
			if !ended && (!rd.yield.Load() || c.flags.has(ending) || c.eventStyle()) {
				c.help()
			}
			return
		}
		if !rd.kept && c.flags.has(onMessage) && !c.flags.has(ending) {
			if c.adopt() {
				return // a poller reads from now on; role and helping stay taken
			}
			rd.kept = true
		}
		c.readStep(true)
		rd.role.Unlock()
	}
}

// readStep feeds what is pending and reads the socket once, then feeds
// that, as the holder of the role. A helper waits while Feed is paused; a
// receiver returns, to take what the inbox holds. It reports false when a
// receiver cannot go on reading: Feed is paused with input pending (a pong
// waits for room in the send queue), and a helper must wait for room.
func (c *Conn) readStep(helper bool) bool {
	rd := c.rd
	if rd.buf != nil && rd.n > 0 {
		if stop, ret := c.feedPending(helper); stop {
			return ret
		}
	}
	if !c.fill(helper) {
		return true
	}
	// Feed is called from here, not through feedBuffered, unless it
	// pauses, and the read and what was pending are out of line: this is
	// the path of every message a blocking handler reads itself, and each
	// byte off it keeps more handlers in their first 2 KiB of stack.
	used, paused := c.Feed((*rd.buf)[:rd.n])
	rd.n = copy(*rd.buf, (*rd.buf)[used:rd.n])
	if (paused && helper) || rd.n == len(*rd.buf) {
		var stop bool
		if rd.n, _, stop = c.feedBuffered(*rd.buf, rd.n, helper); stop {
			rd.ended = true
		}
	}
	return true
}

// feedPending feeds input left from before; stop: readStep returns ret
// without reading.
//
//go:noinline
func (c *Conn) feedPending(helper bool) (stop, ret bool) {
	rd := c.rd
	var paused, end bool
	if rd.n, paused, end = c.feedBuffered(*rd.buf, rd.n, helper); end {
		rd.ended = true
		return true, true
	}
	if !helper && c.inN.Load() > 0 {
		return true, true // a receiver: take what the inbox holds before waiting for more
	}
	if !helper && (paused || rd.n == len(*rd.buf)) {
		return true, false // input waits that Feed did not take: a helper waits for room
	}
	return false, false
}

// fill reads the socket once into the read buffer. It reports false when
// there is nothing to feed: a receiver interrupted the read to take the
// role, or the socket ended and the connection is gone.
//
//go:noinline
func (c *Conn) fill(helper bool) bool {
	rd := c.rd
	rd.releaseIdleBuf() // nothing pending: give it back while waiting
	if rd.buf == nil && rd.rc == nil {
		b := make([]byte, ReadBufferSize+wire.MinBuffer)
		rd.buf = &b
	}
	var k int
	var rerr error
	if rd.rc == nil {
		k, rerr = rd.r.Read((*rd.buf)[rd.n:])
	} else {
		err := rd.rc.Read(rd.read)
		for err == nil && rd.rerr == errNoReadBuffer {
			b := make([]byte, ReadBufferSize)
			rd.buf, rd.rerr = &b, nil
			err = rd.rc.Read(rd.read)
		}
		k, rerr = rd.k, rd.rerr
		rd.k, rd.rerr = 0, nil
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// A receiver interrupted a waiting helper to take the role:
			// whoever reads next clears the deadline first. A buffer
			// allocated for this read goes back: a waiting reader holds none.
			rd.releaseIdleBuf()
			rd.deadline(time.Time{})
			if rd.yield.Load() && !helper {
				rd.yield.Store(false)
			}
			return false
		case err != nil:
			rerr = err
		case rerr == nil && k == 0:
			rerr = io.EOF
		}
	}
	if k > 0 {
		rd.n += k
	}
	if rerr != nil {
		c.readFailed(rerr)
		return false
	}
	return true
}

// releaseIdleBuf gives the read buffer back to readBufs when nothing
// in it waits to be fed and it is a pooled one (a larger one, the
// prefix's or a TLS reader's, stays).
func (rd *reader) releaseIdleBuf() {
	if rd.buf != nil && rd.n == 0 && cap(*rd.buf) == ReadBufferSize {
		readBufs.Put(rd.buf)
		rd.buf = nil
	}
}

// readFd is fill's read on the socket, called by RawConn.Read (rd.read):
// false waits for readability, holding no buffer.
func (rd *reader) readFd(fd uintptr) bool {
	if rd.buf == nil {
		bp, ok := readBufs.Get().(*[]byte)
		if !ok {
			rd.rerr = errNoReadBuffer
			return true
		}
		rd.buf = bp
	}
	for {
		rd.k, rd.rerr = syscall.Read(int(fd), (*rd.buf)[rd.n:])
		if rd.rerr != syscall.EINTR {
			break
		}
	}
	if rd.rerr == syscall.EAGAIN {
		if rd.n == 0 {
			if cap(*rd.buf) == ReadBufferSize { // a larger one (the prefix's) is not pooled
				readBufs.Put(rd.buf)
			}
			rd.buf = nil
		}
		rd.k, rd.rerr = 0, nil
		return false
	}
	return true
}

// readFailed ends the reading of a socket that failed or ended: what was
// read before is fed, then the connection is gone.
//
//go:noinline
func (c *Conn) readFailed(rerr error) {
	rd := c.rd
	if rd.buf != nil && rd.n > 0 {
		c.Feed((*rd.buf)[:rd.n])
	}
	c.uncork() // a peer that ended its sending side may still read the answers
	rd.ended = true
	if rd.buf != nil && cap(*rd.buf) == ReadBufferSize {
		readBufs.Put(rd.buf)
	}
	rd.buf, rd.n = nil, 0
	c.Gone(rerr)
}

// canReadDirect reports whether Receive may read the socket itself.
func (c *Conn) canReadDirect() bool {
	return c.rd != nil && c.rd.attached.Load() && c.rd.direct
}

// takeReadRole is Receive's bid to read the socket itself when the inbox
// is empty (canReadDirect): true, it holds the role (readStep, then
// rd.role.Unlock); false, a helper holds it and was asked to give it up, or
// reading has ended: wait for a message instead.
//
//go:noinline
func (c *Conn) takeReadRole() bool {
	rd := c.rd
	if !c.w.corked.Load() { // corked (another receiver's frames): the timer bounds the cork
		rd.away.Stop()
	}
	if !rd.role.TryLock() {
		rd.yield.Store(true)
		rd.deadline(aLongTimeAgo) // out of the poller: the helper sees yield
		return false
	}
	if rd.ended || rd.helping.Load() {
		rd.role.Unlock()
		return false
	}
	rd.yield.Store(false)
	return true
}

// aLongTimeAgo is a read deadline in the past.
var aLongTimeAgo = time.Unix(1, 0)

// handlerAway arms the helper's start: the handler took a message and may
// not be back for the next one soon.
func (c *Conn) handlerAway() {
	if c.canReadDirect() {
		c.rd.yield.Store(false)
		// inHand first: a cork's timer that fires from here on re-arms
		// for the handler (awayFired), and one that fired before left
		// nothing corked.
		c.rd.inHand.Store(handHandler)
		if !c.w.corked.Load() { // corked: the timer runs for corkGrace
			c.rd.away.Reset(awayGrace)
		}
	}
}

// awayFired: the handler stayed away from Receive for corkGrace with
// frames corked, which go out now; or for awayGrace, and a helper reads.
func (c *Conn) awayFired() {
	hand := c.rd.inHand.Swap(0) // slow: what it sends before its next message goes out at once
	if c.uncork() {
		if hand == handHandler {
			c.rd.away.Reset(awayGrace - corkGrace)
		}
		return
	}
	c.help()
}

// Who handles a message, for corks: a blocking handler that took it in
// Receive, or runEvents passing it to OnMessage.
const (
	handHandler = 1
	handEvents  = 2
)

// feedBuffered feeds buf[:n] until it is consumed or an incomplete frame
// is left; while Feed is paused a helper waits for room, a receiver
// returns (paused: Feed left input it did not take). It returns the bytes
// left, moved to the front of buf.
func (c *Conn) feedBuffered(buf []byte, n int, wait bool) (left int, paused, stop bool) {
	for n > 0 {
		used, p := c.Feed(buf[:n])
		n = copy(buf, buf[used:n])
		if !p {
			break
		}
		if !wait {
			return n, true, false
		}
		<-c.rd.room() // room again, or the connection is ending (Feed then drops data)
	}
	if n == len(buf) { // cannot happen: Feed always consumes a MinBuffer
		c.abort("read buffer stuck")
		return n, false, true
	}
	return n, false, false
}

// Feed parses input and acts on it: messages go to the inbox, pings are
// answered, close frames complete the handshake, protocol errors close the
// connection with their code once the messages before them are handled.
// It returns how many bytes it used; the rest is an incomplete frame to be
// fed again with more bytes. paused reports that it stopped because the
// inbox is over its bounds: feed the rest once the runtime is told to
// (Resume on event loops; ReadLoop waits by itself).
//
// b may be everything an event loop has buffered: what Feed leaves unused
// while paused counts, with the inbox and the message being received,
// against max(ReadLimit, InboxBytes), past which the connection closes
// with 1008 (an event loop cannot stop reading a peer).
func (c *Conn) Feed(b []byte) (used int, paused bool) {
	var now int64
	if len(b) > 0 {
		now = time.Now().UnixNano()
		c.lastRead.Store(now) // for keepalive: the peer is alive
		if (c.flags.has(ending) || c.parser.Done()) && c.overAfterClose(len(b)) {
			return len(b), false
		}
	}
	var ev wire.Event
	for {
		if c.mustPause() && c.pause(len(b)-used) {
			return used, true
		}
		n, err := c.parser.Parse(b[used:], &ev)
		used += n
		if err != nil {
			c.parseFailed(err)
			return len(b), false // discard the rest until the socket closes
		}
		switch ev.Kind {
		case wire.None:
			if n == 0 {
				return used, false
			}
		case wire.Data:
			c.lastData.Store(now) // for IdleTimeout: control frames do not count
			if ev.First {
				c.msgType, c.msgCompressed = ev.Type, ev.Compressed
				c.msg = msgbuf.Get(int(min(ev.FrameLen, msgbuf.Max)))
			}
			c.appendToMsg(&ev)
			if ev.Fin {
				data := c.msg
				c.msg = nil
				if c.msgCompressed {
					var ok bool
					if data, ok = c.inflate(data); !ok {
						return len(b), false
					}
				}
				c.deliver(api.Message{Type: c.msgType, Data: data})
			}
		case wire.Ping:
			c.sendPong(ev.Payload)
		case wire.Pong:
			// any input proves the peer alive: lastRead is enough
		case wire.Close:
			c.msg = nil
			c.peerClose(ev.Code, ev.Reason)
			return len(b), false
		}
	}
}

// Feed's less common paths are out of line: a blocking handler parses in
// its own goroutine, and Feed's frame is on the path of every message.

// pause marks Feed paused unless the handler made room meanwhile; it
// reports whether Feed stops, past the flood budget closing with 1008.
//
//go:noinline
func (c *Conn) pause(unused int) bool {
	c.flags.set(paused, true)
	// The handler may have made room before paused was set.
	if c.mustPause() || !c.flags.clear(paused) {
		c.checkFlood(unused)
		return true
	}
	return false
}

// afterCloseSlack is what the kernel may still hold of a peer's input when
// the end begins, on top of the budget: the sockets' buffers of a peer
// that TCP was holding back (a few MiB with Linux's defaults). A peer that
// answers our close frame after that much was not flooding.
const afterCloseSlack = 16 << 20

// overAfterClose counts the input fed once the connection is ending
// (read only to find the peer's close frame) or once the parser is done
// (after the peer's close or a protocol error: read only to be
// discarded), and cuts a peer that sent
// more than a message of any allowed size, a read buffer and what the
// kernel held (afterCloseSlack): a close frame that far behind is not
// coming, and reading on would cost the
// server its bandwidth and a core until CloseTimeout.
//
//go:noinline
func (c *Conn) overAfterClose(n int) bool {
	c.mu.Lock()
	e := c.endLocked() // made by begin or protocolError already
	e.afterClose += int64(n)
	over := e.afterClose > c.srv.InputBudget()+ReadBufferSize+afterCloseSlack
	c.mu.Unlock()
	if over {
		c.srv.opts.Logger.Debug("wsmatrix: cut: the peer sent on after the connection began to end",
			"bytes", e.afterClose, "path", c.path(), "remote", c.remote.String())
		c.abort("the peer sent more than " + strconv.FormatInt(c.srv.InputBudget(), 10) + " bytes after the connection began to end")
	}
	return over
}

// parseFailed closes with the parser's (or the inflater's) error. The
// parser stays failed (Done): Feed counts what comes after in
// overAfterClose, as the handler may keep the connection draining up to
// CloseTimeout.
//
//go:noinline
func (c *Conn) parseFailed(err error) {
	var ce *api.CloseError
	errors.As(err, &ce)
	c.msg = nil
	c.protocolError(ce)
}

// inflate inflates a whole compressed message; on bad input it closes
// with the error's code and reports false.
//
//go:noinline
func (c *Conn) inflate(data []byte) ([]byte, bool) {
	out, err := c.dfl.inflate(data, c.srv.opts.ReadLimit, c.msgType == api.Text)
	msgbuf.Put(data) // the compressed message, which nobody else saw
	if err != nil {
		c.parseFailed(err)
		return nil, false
	}
	return out, true
}

// mustPause is Feed's bound on what waits for the handler: InboxSize
// messages, or InboxBytes bytes (the message being received included)
// while the handler is busy; while it waits for a message, one message of
// up to ReadLimit. Feed also pauses while a pong waits for room in the
// send queue: a peer that pings and reads nothing gets nothing more read.
// Once the connection is ending nothing is kept, and Feed reads on to find
// the peer's close frame.
func (c *Conn) mustPause() bool {
	if c.flags.has(ending) {
		return false
	}
	if c.flags.has(pongHeld) {
		return true
	}
	n := c.inN.Load()
	if int(n) >= c.srv.opts.InboxSize {
		return true
	}
	held := c.inBytes.Load() + int64(len(c.msg))
	if held == 0 {
		return false
	}
	limit := int64(c.srv.opts.InboxBytes)
	if n == 0 && c.waiting.Load() > 0 {
		limit = max(limit, c.srv.maxMessage+1) // the parser enforces maxMessage itself
	}
	return held >= limit
}

// checkFlood closes with 1008 a connection whose peer has more waiting
// for a busy handler than its budget, counting the input Feed could not
// use (on an event loop, everything buffered; on a blocking socket, at
// most a read buffer, as the kernel holds the rest). The budget is
// max(ReadLimit, InboxBytes), room for one message of any allowed size;
// but while the peer reads nothing it is sent (peerNotReading: Sends have
// waited notReadingAfter with none given room, or the queue stalled), only
// InboxBytes.
func (c *Conn) checkFlood(unused int) {
	if unused <= ReadBufferSize {
		return // the runtime holds no more than a read buffer: the kernel holds the rest, TCP pushes back
	}
	held := int64(unused) + c.inBytes.Load() + int64(len(c.msg))
	budget := c.srv.InputBudget()
	if c.peerNotReading() {
		budget = int64(c.srv.opts.InboxBytes)
	}
	if held <= budget {
		return
	}
	ce := &api.CloseError{Code: api.StatusPolicyViolation,
		Reason: "peer sent more than " + strconv.FormatInt(budget, 10) + " bytes its handler has not taken"}
	c.srv.logProtocolClose(c, ce)
	// The close frame is handed over, then the socket closed at once: the
	// loop would otherwise read on, at the peer's pace, until CloseTimeout.
	c.closeWith(ce.Code, ce.Reason)
	c.finish()
}

// InputBudget is how many bytes a peer may have waiting for a busy
// handler on an event loop, the input not parsed yet included: room for
// one message of any allowed size, max(ReadLimit, InboxBytes).
func (s *Server) InputBudget() int64 { return max(s.maxMessage, int64(s.opts.InboxBytes)) }

// peerNotReading reports whether the peer is reading nothing it is sent:
// a Send has waited for room for notReadingAfter, or the send queue
// stalled (a write made no progress for WriteTimeout).
func (c *Conn) peerNotReading() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w.stalled {
		return true
	}
	x := c.w.cold
	return x != nil && x.roomWaiters > 0 && time.Since(x.waitSince) >= notReadingAfter
}

// notReadingAfter is how long a Send waits for room before the peer is
// taken for one that does not read. A peer that reads, only behind (a
// client busy writing its own burst of large messages), keeps a Send
// waiting a few milliseconds at a time: with its budget cut to InboxBytes
// at the first wait, gnet cut such peers.
const notReadingAfter = time.Second

// Paused reports whether Feed paused and waits to be resumed. An event
// loop checks it before it gathers its buffered input for Feed, and calls
// Unparsed instead.
func (c *Conn) Paused() bool { return c.flags.has(paused) }

// Waiting reports whether received messages wait for the handler: a
// runtime that can batch writes may hold a frame sent now for the answers
// to those, and write them together.
func (c *Conn) Waiting() bool { return c.inN.Load() > 0 }

// Unparsed tells a paused connection how many bytes of input wait in the
// runtime's buffer; past the budget Feed documents it closes with 1008.
func (c *Conn) Unparsed(n int) { c.checkFlood(n) }

// resumeReader tells a paused reader to try again: the handler took a
// message, started waiting, or the connection is ending.
func (c *Conn) resumeReader() {
	if !c.flags.clear(paused) {
		return
	}
	if t, ok := c.t.(*rawTransport); ok {
		if p := t.polled.Load(); p != nil {
			p.askResume()
			return
		}
	}
	if r, ok := c.t.(Resumer); ok {
		r.Resume()
		return
	}
	select {
	case c.rd.room() <- struct{}{}:
	default:
	}
}

// appendToMsg appends ev's piece to the message being received. Its two
// arguments keep Feed's frame small: Feed reserves room for its callees'
// arguments, and its frame is under every message's allocation on a
// blocking handler's stack.
//
//go:noinline
func (c *Conn) appendToMsg(ev *wire.Event) {
	c.msg = appendPiece(c.msg, ev.Payload, ev.FrameRest, ev.Fin)
}

// appendPiece appends a piece of a message to what came before. The buffer
// at most doubles at a time (a peer that declares a long frame and sends
// slowly holds about what it sent) and goes straight to the frame's end
// once that is near: a long frame costs about twice its length in
// allocations, where append's gentler growth costs five times.
func appendPiece(msg, piece []byte, rest int64, fin bool) []byte {
	need := len(msg) + len(piece)
	if need > cap(msg) {
		size := max(2*cap(msg), need)
		// Within a frame its end is known, and at the last frame's end
		// the message's; at another frame's end (rest 0, not fin) it is
		// not, and growing to just what is needed would copy the message
		// again at every frame.
		if end := int64(need) + rest; (rest > 0 || fin) && end <= int64(size)+int64(size)/2 {
			size = int(end)
		}
		grown := msgbuf.Get(size)[:len(msg)]
		copy(grown, msg)
		msgbuf.Put(msg)
		msg = grown
	}
	return append(msg, piece...)
}
