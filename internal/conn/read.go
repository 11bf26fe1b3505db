package conn

import (
	"errors"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// ReadBufferSize is the size of ReadLoop's buffers.
const ReadBufferSize = 4096

var readBufs = sync.Pool{New: func() any { b := make([]byte, ReadBufferSize); return &b }}

// ReadLoop reads from r until the connection ends, for runtimes with a
// blocking socket. prefix holds bytes already read past the upgrade
// request. While the inbox is over its bounds it stops reading, which
// pushes back on the peer through TCP.
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
// is left, waiting while Feed is paused; it returns the bytes left, moved
// to the front of buf.
func (c *Conn) feedBuffered(buf []byte, n int) (int, bool) {
	for n > 0 {
		used, paused := c.Feed(buf[:n])
		n = copy(buf, buf[used:n])
		if !paused {
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
	if len(b) > 0 {
		c.lastRead.Store(time.Now().UnixNano()) // for keepalive: the peer is alive
	}
	for {
		if c.mustPause() {
			c.paused.Store(true)
			// The handler may have made room before paused was set.
			if c.mustPause() || !c.paused.CompareAndSwap(true, false) {
				c.checkFlood(len(b) - used)
				return used, true
			}
		}
		ev, n, err := c.parser.Parse(b[used:])
		used += n
		if err != nil {
			var ce *api.CloseError
			errors.As(err, &ce)
			c.msg = nil
			c.protocolError(ce)
			return len(b), false // discard the rest until the socket closes
		}
		switch ev.Kind {
		case wire.None:
			if n == 0 {
				return used, false
			}
		case wire.Data:
			if ev.First {
				c.msgType, c.msgCompressed = ev.Type, ev.Compressed
				c.msg = make([]byte, 0, min(ev.FrameLen, 64<<10))
			}
			c.msg = appendPiece(c.msg, ev.Payload, ev.FrameRest)
			if ev.Fin {
				data := c.msg
				c.msg = nil
				if c.msgCompressed {
					out, err := c.dfl.inflate(data, c.srv.opts.ReadLimit, c.msgType == api.Text)
					if err != nil {
						var ce *api.CloseError
						errors.As(err, &ce)
						c.protocolError(ce)
						return len(b), false
					}
					data = out
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

// mustPause is Feed's bound on what waits for the handler: InboxSize
// messages, or InboxBytes bytes (the message being received included)
// while the handler is busy; while it waits for a message, one message of
// up to ReadLimit. Feed also pauses while a pong waits for room in the
// send queue: a peer that pings and reads nothing gets nothing more read.
// Once the connection is ending nothing is kept, and Feed reads on to find
// the peer's close frame.
func (c *Conn) mustPause() bool {
	if c.ending.Load() {
		return false
	}
	if c.pongHeld.Load() {
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
		limit = max(limit, c.srv.opts.ReadLimit+1) // the parser enforces ReadLimit itself
	}
	return held >= limit
}

// checkFlood closes with 1008 a connection whose peer has more waiting
// for a busy handler than its budget, counting the input Feed could not
// use (on an event loop, everything buffered; on a blocking socket, at
// most a read buffer, as the kernel holds the rest). The budget is
// max(ReadLimit, InboxBytes), room for one message of any allowed size;
// but while the peer reads nothing it is sent (a Send waits for it, or the
// queue stalled), only InboxBytes.
func (c *Conn) checkFlood(unused int) {
	if unused <= ReadBufferSize {
		return // the runtime holds no more than a read buffer: the kernel holds the rest, TCP pushes back
	}
	held := int64(unused) + c.inBytes.Load() + int64(len(c.msg))
	budget := max(c.srv.opts.ReadLimit, int64(c.srv.opts.InboxBytes))
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

// peerNotReading reports whether the peer is reading nothing it is sent:
// a Send waits for it, or the send queue stalled.
func (c *Conn) peerNotReading() bool {
	if c.sendWaiting.Load() > 0 {
		return true
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.stalled
}

// Paused reports whether Feed paused and waits to be resumed. An event
// loop checks it before it gathers its buffered input for Feed, and calls
// Unparsed instead.
func (c *Conn) Paused() bool { return c.paused.Load() }

// Unparsed tells a paused connection how many bytes of input wait in the
// runtime's buffer; past the budget Feed documents it closes with 1008.
func (c *Conn) Unparsed(n int) { c.checkFlood(n) }

// resumeReader tells a paused reader to try again: the handler took a
// message, started waiting, or the connection is ending.
func (c *Conn) resumeReader() {
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

// appendPiece appends a piece of a message to what came before. The buffer
// at most doubles at a time (a peer that declares a long frame and sends
// slowly holds about what it sent) and goes straight to the frame's end
// once that is near: a long frame costs about twice its length in
// allocations, where append's gentler growth costs five times.
func appendPiece(msg, piece []byte, rest int64) []byte {
	need := len(msg) + len(piece)
	if need > cap(msg) {
		size := max(2*cap(msg), need)
		if end := int64(need) + rest; end <= int64(size)+int64(size)/2 {
			size = int(end)
		}
		grown := make([]byte, len(msg), size)
		copy(grown, msg)
		msg = grown
	}
	return append(msg, piece...)
}
