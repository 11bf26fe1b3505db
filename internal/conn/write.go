package conn

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/hook"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// writer is the send side of a connection, guarded by Conn.wmu.
//
// One goroutine at a time holds the writer role (active). With a
// TryWriter transport the role is taken by the Send that finds it free: it
// writes its frame without waiting, writes what others queued meanwhile
// the same way, and when the socket takes less than everything, hands the
// rest to a flushing goroutine that waits on the socket. So no Send, no
// pong from the reader and no ping from the keepalive clock ever waits on
// the socket; only a Send that finds the queue over its budget waits, as
// SendQueueFull says.
type writer struct {
	queue  []byte      // frames waiting, in order
	queued int         // bytes in queue, plus those the flusher is writing
	cold   *writerCold // made when the peer falls behind, dropped when empty

	active       bool // a goroutine holds the writer role
	flushing     bool // the role is held by the flushing goroutine
	hasPong      bool
	closeQueued  bool        // a close frame is the last frame of the queue: nothing follows it
	closeWritten bool        // and it went out
	finishAfter  bool        // close the socket once the close frame is out (the peer's came first)
	halfClose    bool        // end our sending side once the close frame is out (the peer broke the protocol)
	dead         bool        // the socket is closed or a write failed: nothing is written any more
	stalled      bool        // a write made no progress for WriteTimeout: closing with 1008
	corked       atomic.Bool // frames wait in queue, the role free, for the handler's next ones (see corks); set under wmu
}

// writerCold is what only a connection whose peer fell behind needs. It is
// made on first use and dropped once empty: every connection holds a Conn,
// and 64 bytes less keep it in the 448-byte size class.
type writerCold struct {
	spare []byte        // the flusher's other buffer
	pong  []byte        // the answer to the latest ping, held while the queue is over budget
	room  chan struct{} // closed when bytes left the queue, for Sends waiting for room

	// Sends waiting for room (waitRoomLocked), and since when one has
	// waited with no Send given room (its monotonic reading: a wall-clock
	// step neither hides nor fakes a wait): a peer that took nothing for
	// notReadingAfter does not read.
	roomWaiters int
	waitSince   time.Time
}

// coldLocked returns the writer's cold state, made if need be.
func (c *Conn) coldLocked() *writerCold {
	if c.w.cold == nil {
		c.w.cold = new(writerCold)
	}
	return c.w.cold
}

// trimColdLocked drops the cold state once it holds nothing (a held pong
// without payload is something: pong is nil then).
func (c *Conn) trimColdLocked() {
	if x := c.w.cold; x != nil && !c.w.hasPong && x.spare == nil && x.pong == nil && x.room == nil && x.roomWaiters == 0 {
		c.w.cold = nil
	}
}

// fullPolicy is what a send does when the queue is full.
type fullPolicy uint8

const (
	fullAsOptions fullPolicy = iota // Options.SendQueueFull decides
	fullClose                       // fail at once and close with 1008
	fullDrop                        // fail at once; the connection goes on
)

// bigFrame: payloads larger than this are written without a copy when the
// socket takes them at once.
const bigFrame = 64 << 10

// Send sends m.
//
// The send path is kept shallow, its rare branches out of line: a
// blocking handler sends from deep in its own stack, and a few hundred
// bytes more grow every handler's 2 KiB stack to 4 KiB on its first send.
func (c *Conn) Send(m api.Message) error {
	if m.Type != api.Text && m.Type != api.Binary {
		return invalidType(m.Type)
	}
	op := ws.OpCode(m.Type) // the types are their opcodes
	// sendDataFull's two lines, not a call to it: its frame would be on
	// every handler's send path (it is not inlined).
	if d := c.dfl; d != nil && len(m.Data) >= d.threshold {
		return c.sendCompressed(op, m.Data, fullAsOptions)
	}
	return c.put(op, m.Data, false, fullAsOptions)
}

//go:noinline
func invalidType(t api.MessageType) error {
	return fmt.Errorf("wsmatrix: Send: invalid message type %d", t)
}

// SendText sends a text message.
func (c *Conn) SendText(s string) error { return c.sendData(wire.OpText, []byte(s)) }

// SendBinary sends a binary message.
func (c *Conn) SendBinary(p []byte) error { return c.sendData(wire.OpBinary, p) }

// backlogLocked is what waits to be written: the queue, and what an event
// loop holds.
func (c *Conn) backlogLocked() int {
	n := c.w.queued
	if bl, ok := c.t.(Backlogger); ok {
		n += bl.Backlog()
	}
	return n
}

// sendData sends a data frame: written at once when the writer role is
// free, else queued behind the frames before it. A frame is taken when the
// backlog is empty or the frame fits in SendQueueBytes; otherwise the
// queue is full and SendQueueFull decides.
func (c *Conn) sendData(op ws.OpCode, p []byte) error {
	return c.sendDataFull(op, p, fullAsOptions)
}

func (c *Conn) sendDataFull(op ws.OpCode, p []byte, full fullPolicy) error {
	if d := c.dfl; d != nil && len(p) >= d.threshold {
		return c.sendCompressed(op, p, full)
	}
	return c.put(op, p, false, full)
}

// sendCompressed compresses p and sends it.
//
//go:noinline
func (c *Conn) sendCompressed(op ws.OpCode, p []byte, full fullPolicy) error {
	d := c.dfl
	if !d.ServerNoContextTakeover {
		// The window follows the wire: compress and take a place in the
		// queue as one step.
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	return c.put(op, d.compress(p), true, full)
}

// put writes a data frame, or queues it behind the frames before it.
func (c *Conn) put(op ws.OpCode, p []byte, compressed bool, full fullPolicy) error {
	size := wire.HeaderLen(len(p)) + len(p)
	c.wmu.Lock()
	if err := c.reserveLocked(size, full); err != nil {
		return err
	}
	c.srv.obs.Sent(len(p))
	if corks := c.corks(); c.w.active || corks || c.w.corked.Load() {
		c.queueFrameLocked(op, p, compressed, size)
		c.queuedLocked(corks)
		return nil
	}
	c.w.active = true
	c.wmu.Unlock()
	// writeOwn, with writeParts inline: two frames less under a blocking
	// handler's Send, where the write may allocate (gnet's batch and task
	// queue). Through writeOwn, gnet's blocking handlers grew their stacks
	// 246-410 bytes a connection on 4 pipelined 1 KiB messages, against
	// 98-180 (TestBlockingHandlersKeepTheirFirstStack).
	bp, rest := ownFrame(op, p, compressed)
	mayWait := full == fullAsOptions && c.srv.opts.SendQueueFull == api.QueueBlock
	var err error
	if tw, ok := c.t.(TryWriter); ok {
		var n int
		if n, err = tw.TryWrite(*bp, rest); err != nil {
			err = c.tryWriteFailed(err)
		} else if n == len(*bp)+len(rest) {
			c.drain()
		} else {
			err = c.writeRest(*bp, rest, n, mayWait)
		}
	} else {
		err = c.writeRest(*bp, rest, 0, mayWait)
	}
	putFrameBuffer(bp)
	return err
}

// appendFrame appends a whole frame, marked compressed (RSV1) or not.
func appendFrame(dst []byte, op ws.OpCode, p []byte, compressed bool) []byte {
	if compressed {
		return append(wire.AppendCompressedHeader(dst, op, len(p)), p...)
	}
	return wire.AppendFrame(dst, op, p)
}

// reserveLocked makes room for a frame of size bytes: it returns with wmu
// held when the frame may be queued, or with wmu released and the error
// Send returns — the connection is ending, or the queue is full and
// SendQueueFull said to fail (QueueClose) or waited WriteTimeout in vain
// (QueueBlock); full may override SendQueueFull.
func (c *Conn) reserveLocked(size int, full fullPolicy) error {
	if !c.flags.has(ending) && !c.w.closeQueued && !c.w.dead {
		if backlog := c.backlogLocked(); backlog == 0 || backlog+size <= c.srv.opts.SendQueueBytes {
			return nil
		}
	}
	return c.reserveSlowLocked(size, full)
}

// reserveSlowLocked is reserveLocked when the frame does not fit at once,
// or the connection ends. It is out of line: its frame is three times
// the fast path's, on every Send of a blocking handler.
//
//go:noinline
func (c *Conn) reserveSlowLocked(size int, full fullPolicy) error {
	var deadline time.Time
	refreshed := false
	for {
		if c.flags.has(ending) || c.w.closeQueued || c.w.dead { // the handler was told: nothing more is sent
			stalled := c.w.stalled && !deadline.IsZero()
			c.wmu.Unlock()
			if stalled { // it waited for room, and the peer never made any
				return fmt.Errorf("%w: the peer stopped reading (connection closed with 1008)", api.ErrQueueFull)
			}
			return c.sendErr()
		}
		backlog := c.backlogLocked()
		if backlog == 0 || backlog+size <= c.srv.opts.SendQueueBytes {
			return nil
		}
		if bl, ok := c.t.(Backlogger); ok && !refreshed { // the loop's figure may be stale
			refreshed = true
			c.wmu.Unlock()
			bl.RefreshBacklog()
			c.wmu.Lock()
			continue
		}
		if c.w.corked.Load() { // what waits for nobody goes out first
			c.takeRoleLocked()
			c.wmu.Unlock()
			c.drain()
			c.wmu.Lock()
			continue
		}
		if deadline.IsZero() {
			c.srv.obs.QueueFull()
			if full == fullDrop {
				c.wmu.Unlock()
				return fmt.Errorf("%w: %d bytes wait for the peer (message dropped)", api.ErrQueueFull, backlog)
			}
			if full == fullClose || c.srv.opts.SendQueueFull == api.QueueClose {
				c.wmu.Unlock()
				return c.queueFull("send queue full", fmt.Errorf("%w: %d bytes wait for the peer (connection closed with 1008)", api.ErrQueueFull, backlog))
			}
			deadline = time.Now().Add(c.srv.opts.WriteTimeout)
		}
		if !c.waitRoomLocked(size, deadline) {
			c.wmu.Unlock()
			return c.queueFull("send queue full: the peer stopped reading", fmt.Errorf("%w for %v (connection closed with 1008)", api.ErrQueueFull, c.srv.opts.WriteTimeout))
		}
	}
}

// waitRoomLocked waits, with wmu held on entry and on return, until the
// backlog may take size more bytes, the connection ends or deadline
// passes (the zero time: never); it reports false on the deadline.
func (c *Conn) waitRoomLocked(size int, deadline time.Time) (gotRoom bool) {
	if x := c.coldLocked(); x.roomWaiters == 0 {
		x.waitSince = time.Now()
	}
	c.w.cold.roomWaiters++
	defer func() { // wmu is held again on return
		x := c.coldLocked()
		switch x.roomWaiters--; {
		case x.roomWaiters == 0:
			c.trimColdLocked()
		case gotRoom:
			// The peer took bytes: the others' wait for it starts again
			// (with several senders one nearly always waits).
			x.waitSince = time.Now()
		}
	}()
	defer c.poolWaits()()
	noDeadline := c.srv.opts.WriteTimeout <= 0
	if bl, ok := c.t.(Backlogger); ok && c.w.queued == 0 {
		c.wmu.Unlock()
		var d time.Time
		if !noDeadline {
			d = deadline
		}
		ok := bl.WaitBacklog(max(c.srv.opts.SendQueueBytes-size, 0), d, c.endedCh())
		c.wmu.Lock()
		return ok || c.w.dead || c.w.closeQueued
	}
	x := c.coldLocked()
	if x.room == nil {
		x.room = make(chan struct{})
	}
	room := x.room
	c.wmu.Unlock()
	ended := c.endedCh()
	var timeout <-chan time.Time
	if !noDeadline {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	ok := true
	select {
	case <-room:
	case <-ended:
	case <-timeout:
		ok = false
	}
	c.wmu.Lock()
	return ok
}

// poolWaits tells the pool, when this connection's callback is running,
// that a Send is about to wait for the peer (its worker, or one beside
// it): the pool may run another worker meanwhile. It returns what ends
// the wait.
func (c *Conn) poolWaits() (done func()) {
	if !c.flags.has(inEvent) {
		return noWait
	}
	c.srv.pool.block()
	return c.srv.pool.unblock
}

func noWait() {}

// queueFull closes the connection with 1008 and reason, and returns err.
func (c *Conn) queueFull(reason string, err error) error {
	c.closeWith(api.StatusPolicyViolation, reason)
	return err
}

// wakeSendersLocked wakes the Sends waiting for room.
func (c *Conn) wakeSendersLocked() {
	if x := c.w.cold; x != nil && x.room != nil {
		close(x.room)
		x.room = nil
		c.trimColdLocked()
	}
}

func (c *Conn) sendErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ce := c.closeErrLocked(); ce != nil {
		return ce
	}
	return &api.CloseError{Code: api.StatusAbnormalClosure, Reason: "connection closed"}
}

// sendPong answers a ping. Past the queue's budget only the answer to the
// latest ping is kept (RFC 6455 5.5.3 allows it), so a peer that pings and
// never reads costs a bounded number of bytes.
func (c *Conn) sendPong(p []byte) {
	c.wmu.Lock()
	if c.w.closeQueued || c.w.dead {
		c.wmu.Unlock()
		return
	}
	if c.backlogLocked() >= c.srv.opts.SendQueueBytes {
		x := c.coldLocked()
		x.pong = append(x.pong[:0], p...)
		c.w.hasPong = true
		c.flags.set(pongHeld, true) // Feed pauses: a peer that does not read gets nothing more read
		c.wmu.Unlock()
		return
	}
	c.sendControlLocked(wire.OpPong, p)
}

// sendPing sends a keepalive ping; it never waits.
func (c *Conn) sendPing() {
	c.wmu.Lock()
	if c.w.closeQueued || c.w.dead {
		c.wmu.Unlock()
		return
	}
	c.sendControlLocked(wire.OpPing, nil)
}

// sendControlLocked queues a control frame, or writes it when the role is
// free; it unlocks wmu.
func (c *Conn) sendControlLocked(op ws.OpCode, p []byte) {
	if c.w.active {
		c.w.queue = wire.AppendFrame(c.w.queue, op, p)
		c.w.queued += wire.HeaderLen(len(p)) + len(p)
		c.wmu.Unlock()
		return
	}
	c.takeRoleLocked() // drain writes any corked frames after this one
	c.wmu.Unlock()
	c.writeOwn(op, p, false, false) // control frames are never compressed and never wait
}

// queueClose queues the close frame as the last frame. finishAfter closes
// the socket once it is out (it answers the peer's close).
func (c *Conn) queueClose(code api.StatusCode, reason string, finishAfter bool) {
	c.wmu.Lock()
	c.w.finishAfter = c.w.finishAfter || finishAfter
	if c.w.closeQueued || c.w.dead {
		c.wmu.Unlock()
		return
	}
	c.w.closeQueued = true
	if c.w.hasPong { // the held pong is dropped: nothing follows the close frame
		c.w.hasPong = false
		c.w.cold.pong = nil
		c.trimColdLocked()
	}
	c.flags.set(pongHeld, false)
	n := len(c.w.queue)
	c.w.queue = wire.AppendClose(c.w.queue, code, reason)
	c.w.queued += len(c.w.queue) - n
	c.wakeSendersLocked() // they fail now
	if c.w.active {
		c.wmu.Unlock()
		return
	}
	c.takeRoleLocked()
	c.wmu.Unlock()
	c.drain()
}

// corkBytes and corkGrace bound what a connection corks, and how long.
const (
	corkBytes = 16 << 10
	corkGrace = time.Millisecond
)

// corks reports whether a frame sent now waits for the next ones: on a
// connection whose socket is read by its handler or helper (stdhttp,
// fasthttp), a blocking handler took a message in Receive, or OnMessage is
// being passed one, and more wait in the inbox, so more answers are likely
// to follow before the inbox is empty. The frames then go out together, in
// one write, when the handler comes back to Receive with no message left
// (or returns), when runEvents ends its batch, when a Send finds no message
// left, when the handler stays away for corkGrace, or when the corked
// bytes pass corkBytes: what a read brought in one piece is answered in one
// piece, as an event loop answers a batch.
func (c *Conn) corks() bool {
	rd := c.rd
	return rd != nil && rd.inHand.Load() != 0 && c.Waiting()
}

// queueFrameLocked appends a data frame to the queue, in pooled storage
// when the queue has none.
//
//go:noinline
func (c *Conn) queueFrameLocked(op ws.OpCode, p []byte, compressed bool, size int) {
	if cap(c.w.queue)-len(c.w.queue) < size {
		c.w.queue = growQueue(c.w.queue, size)
	}
	c.w.queue = appendFrame(c.w.queue, op, p, compressed)
	c.w.queued += size
}

// growQueue returns q with room for n more bytes: pooled storage for a
// queue without any, grown if that is not enough. Its callers make room before
// they append, and it grows with make and copy, not append: the
// allocation then happens about 300 bytes higher on a blocking handler's
// stack than append's growth under appendFrame did. Below an allocation
// the runtime may refill its span cache, sweep or assist the GC, which
// takes another 400-600 bytes; past the first 2 KiB, the handler's stack
// doubles for good (TestBlockingHandlersKeepTheirFirstStack).
//
//go:noinline
func growQueue(q []byte, n int) []byte {
	if cap(q) == 0 {
		if q = getQueueBuf(); cap(q) >= n {
			return q
		}
	}
	return GrowBytes(q, n)
}

// GrowBytes returns b with room for n more bytes, at least doubled. It
// makes and copies rather than let append grow b: growslice's frame is
// 112 bytes, makeslice's 40, and the buffers of a blocking handler's
// Send grow deep under its stack (see growQueue; gnet's write batch).
func GrowBytes(b []byte, n int) []byte {
	grown := make([]byte, len(b), max(len(b)+n, 2*cap(b)))
	copy(grown, b)
	return grown
}

// queueBufs pools the storage of queues that went out at once (corked
// answers, Sends that came while another wrote): a connection whose peer
// keeps up keeps no queue storage between writes. One whose peer fell
// behind keeps a spare (putSpareLocked) while it stays behind.
var queueBufs sync.Pool // of *[]byte

// getQueueBuf returns empty pooled storage for a queue, or nil.
func getQueueBuf() []byte {
	if bp, ok := queueBufs.Get().(*[]byte); ok {
		return (*bp)[:0]
	}
	return nil
}

// putQueueBuf gives a queue's storage back to the pool, unless it grew
// large (a burst's storage is not kept).
func putQueueBuf(b []byte) {
	if cap(b) == 0 || cap(b) > 4*bigFrame {
		return
	}
	b = b[:0]
	queueBufs.Put(&b)
}

// queuedLocked settles what was just queued, corks as the sender found
// it, and unlocks wmu: the holder of the writer role writes it; or it
// stays corked (see corks); or this goroutine takes the role and writes
// the queue.
//
//go:noinline
func (c *Conn) queuedLocked(corks bool) {
	switch {
	case c.w.active:
	case corks && len(c.w.queue) <= corkBytes:
		if !c.w.corked.Swap(true) {
			c.rd.away.Reset(corkGrace) // the first corked frame waits corkGrace at most
		}
	default:
		c.takeRoleLocked()
		c.wmu.Unlock()
		c.drain()
		return
	}
	c.wmu.Unlock()
}

// takeRoleLocked takes the free writer role, which ends a cork: the
// role's holder writes the queue, corked frames first. The cork's timer is
// set back under wmu, before the role is given up: no other cork can
// start meanwhile and have its timer changed.
func (c *Conn) takeRoleLocked() {
	c.w.active = true
	if c.w.corked.Swap(false) {
		c.corkEnded()
	}
}

// corkEnded sets the timer that ran for corkGrace back: to awayGrace while
// a blocking handler holds a message (it may still be away), off in event
// style (a helper reads all along).
func (c *Conn) corkEnded() {
	switch c.rd.inHand.Load() {
	case handHandler:
		c.rd.away.Reset(awayGrace)
	case handEvents:
		c.rd.away.Stop()
	}
}

// uncork writes what is corked, and reports whether there was any.
func (c *Conn) uncork() bool {
	c.wmu.Lock()
	if !c.w.corked.Load() {
		c.wmu.Unlock()
		return false
	}
	c.takeRoleLocked()
	c.wmu.Unlock()
	c.drain()
	return true
}

// writeOwn writes a frame as the holder of the writer role, then what was
// queued meanwhile, without waiting on the socket; it gives the role up or
// hands it to the flusher. With mayWait (a Send under QueueBlock), a frame
// whose unwritten part is larger than the whole SendQueueBytes is not
// copied into the queue: its sender writes it, waiting for the peer as it
// would wait for room, so a peer that stops reading costs one message, not
// two.
func (c *Conn) writeOwn(op ws.OpCode, p []byte, compressed, mayWait bool) error {
	// The frame is built in a pooled buffer: what the socket does not
	// take is copied into the queue, so a connection keeps no frame
	// buffer between messages.
	bp, rest := ownFrame(op, p, compressed)
	err := c.writeParts(*bp, rest, mayWait)
	putFrameBuffer(bp) // nothing keeps it: what was not written was copied into the queue
	return err
}

// ownFrame builds writeOwn's frame in a pooled buffer: the whole frame,
// or only its header when the payload is larger than bigFrame, which is
// then the rest to write from where it is. It is out of line, so that its
// locals are not on the stack while the frame is written: under a
// blocking handler's Send, the write may allocate (gnet's batch; see
// growQueue).
//
//go:noinline
func ownFrame(op ws.OpCode, p []byte, compressed bool) (bp *[]byte, rest []byte) {
	if len(p) > bigFrame {
		bp = frameBuffer(wire.MaxHeaderLen)
		if compressed {
			*bp = wire.AppendCompressedHeader(*bp, op, len(p))
		} else {
			*bp = wire.AppendHeader(*bp, op, len(p))
		}
		return bp, p
	}
	bp = frameBuffer(wire.HeaderLen(len(p)) + len(p))
	*bp = appendFrame(*bp, op, p, compressed)
	return bp, nil
}

// frameBuffers pools the buffers ownFrame builds frames in, across
// connections.
var frameBuffers = sync.Pool{New: func() any { return new([]byte) }}

// frameBuffer returns an empty pooled frame buffer with room for n bytes,
// so that a new buffer is allocated here, not by append's growth under
// appendFrame (see growQueue).
//
//go:noinline
func frameBuffer(n int) *[]byte {
	bp := frameBuffers.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, 0, n)
	}
	return bp
}

func putFrameBuffer(bp *[]byte) {
	if cap(*bp) > bigFrame+16 {
		*bp = nil
	}
	*bp = (*bp)[:0]
	frameBuffers.Put(bp)
}

// writeParts writes a then b as the holder of the writer role (see
// writeOwn).
func (c *Conn) writeParts(a, b []byte, mayWait bool) error {
	n := 0
	if tw, ok := c.t.(TryWriter); ok {
		var err error
		if n, err = tw.TryWrite(a, b); err != nil {
			return c.tryWriteFailed(err)
		}
		if n == len(a)+len(b) {
			c.drain()
			return nil
		}
	}
	return c.writeRest(a, b, n, mayWait)
}

//go:noinline
func (c *Conn) tryWriteFailed(err error) error {
	c.writeFailed(err)
	return c.sendErr()
}

// writeRest queues what the socket did not take of a then b, n bytes
// written, and starts the flusher; or, with mayWait and more than the
// whole budget left, writes it waiting (see writeOwn).
//
//go:noinline
func (c *Conn) writeRest(a, b []byte, n int, mayWait bool) error {
	if n < len(a) {
		a = a[n:]
	} else {
		a, b = nil, b[n-len(a):]
	}
	if mayWait && len(a)+len(b) > c.srv.opts.SendQueueBytes {
		return c.writeWaiting(a, b)
	}
	c.wmu.Lock()
	q := append(append(c.takeSpareLocked(), a...), b...)
	c.w.queued += len(q)
	c.w.queue = append(q, c.w.queue...)
	c.startFlusherLocked()
	c.wmu.Unlock()
	return nil
}

// writeWaiting writes a then b, what is left of the role holder's frame,
// waiting on the socket up to WriteTimeout per write. A write that makes no
// progress for that long is a queue that never emptied: ErrQueueFull, and
// the connection closes with 1008 once what is left of the frame is out.
func (c *Conn) writeWaiting(a, b []byte) error {
	defer c.poolWaits()()
	for i, p := range [2][]byte{a, b} {
		if len(p) == 0 {
			continue
		}
		n, err := c.t.Write(p)
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			c.writeFailed(err)
			return c.sendErr()
		}
		c.wmu.Lock()
		q := append(c.takeSpareLocked(), p[n:]...)
		if i == 0 {
			q = append(q, b...)
		}
		c.w.queued += len(q)
		c.w.queue = append(q, c.w.queue...)
		c.w.stalled = true
		c.startFlusherLocked()
		c.wmu.Unlock()
		c.srv.obs.QueueFull()
		c.closeWith(api.StatusPolicyViolation, "send queue full: the peer stopped reading")
		return fmt.Errorf("%w: the peer took nothing for %v (connection closed with 1008)", api.ErrQueueFull, c.srv.opts.WriteTimeout)
	}
	c.drain()
	return nil
}

// takeSpareLocked returns the spare buffer, emptied, for a new queue.
func (c *Conn) takeSpareLocked() []byte {
	x := c.w.cold
	if x == nil {
		return nil
	}
	q := x.spare[:0]
	x.spare = nil // not trimmed: putSpareLocked gives a buffer back right after the write
	return q
}

// putSpareLocked keeps buf's storage as the spare buffer, unless it grew
// large: a burst's storage is not kept.
func (c *Conn) putSpareLocked(buf []byte) {
	if cap(buf) <= 4*bigFrame {
		c.coldLocked().spare = buf[:0]
		return
	}
	c.trimColdLocked()
}

// startFlusherLocked hands the writer role to the flusher.
func (c *Conn) startFlusherLocked() {
	if !c.w.flushing {
		c.w.flushing = true
		go c.flushLoop()
	}
}

// drain writes what is queued, as the holder of the writer role, without
// waiting on the socket; it gives the role up when the queue is empty, or
// hands the rest to the flusher.
func (c *Conn) drain() {
	c.wmu.Lock()
	for {
		c.takePongLocked()
		if len(c.w.queue) == 0 || c.w.dead {
			after := c.releaseLocked()
			c.wmu.Unlock()
			after()
			return
		}
		tw, ok := c.t.(TryWriter)
		if !ok {
			c.startFlusherLocked()
			c.wmu.Unlock()
			return
		}
		buf := c.w.queue
		c.w.queue = c.takeSpareLocked()
		c.wmu.Unlock()
		n, err := tw.TryWrite(buf, nil)
		if err != nil {
			c.writeFailed(err)
			return
		}
		c.wmu.Lock()
		c.w.queued -= n
		c.wakeSendersLocked()
		if n < len(buf) { // the rest goes first, written by the flusher
			c.w.queue = append(append(make([]byte, 0, len(buf)-n+len(c.w.queue)), buf[n:]...), c.w.queue...)
			c.startFlusherLocked()
			c.wmu.Unlock()
			return
		}
		if c.w.cold != nil { // the peer fell behind: a spare for the flusher
			c.putSpareLocked(buf)
		} else {
			putQueueBuf(buf)
		}
	}
}

// flushLoop holds the writer role while the socket cannot take the queue
// at once: it writes, waiting on the socket, until the queue is empty. A
// write that makes no progress for WriteTimeout means the peer stopped
// reading: the connection closes with 1008, as a Send that waits for room
// that long does, and the close frame follows what is queued.
func (c *Conn) flushLoop() {
	c.wmu.Lock()
	for {
		c.takePongLocked()
		if len(c.w.queue) == 0 || c.w.dead {
			c.w.flushing = false
			after := c.releaseLocked()
			c.wmu.Unlock()
			after()
			return
		}
		buf := c.w.queue
		c.w.queue = c.takeSpareLocked()
		c.wmu.Unlock()
		n, err := c.t.Write(buf)
		c.wmu.Lock()
		c.w.queued -= n
		c.wakeSendersLocked()
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.w.dead {
			c.w.queue = append(append(make([]byte, 0, len(buf)-n+len(c.w.queue)), buf[n:]...), c.w.queue...)
			if !c.w.stalled && !c.w.closeQueued {
				c.w.stalled = true
				c.wmu.Unlock()
				c.srv.obs.QueueFull()
				c.srv.opts.Logger.Debug("wsmatrix: closing: the peer stopped reading", "code", int(api.StatusPolicyViolation),
					"write-timeout", c.srv.opts.WriteTimeout, "path", c.path(), "remote", c.remote.String())
				c.closeWith(api.StatusPolicyViolation, "send queue full: the peer stopped reading")
				c.wmu.Lock()
			}
			continue // the close handshake's timeout cuts the connection if the peer never reads again
		}
		c.putSpareLocked(buf)
		if err != nil {
			c.w.flushing = false
			c.wmu.Unlock()
			c.writeFailed(err)
			return
		}
	}
}

// takePongLocked moves a held pong into the queue once the queue is under
// its budget again.
func (c *Conn) takePongLocked() {
	if !c.w.hasPong || c.w.closeQueued || c.backlogLocked() >= c.srv.opts.SendQueueBytes {
		return
	}
	c.w.hasPong = false
	n := len(c.w.queue)
	c.w.queue = wire.AppendFrame(c.w.queue, wire.OpPong, c.w.cold.pong) // hasPong: the cold state holds it
	c.w.queued += len(c.w.queue) - n
	c.w.cold.pong = nil
	c.trimColdLocked()
	c.flags.set(pongHeld, false)
	c.resumeReader()
}

// releaseLocked gives the writer role up with the queue empty, and
// returns what follows: once the close frame is out, closing the socket
// (the peer's close came first) or ending our sending side (after a
// protocol error).
func (c *Conn) releaseLocked() func() {
	c.w.active = false
	c.wakeSendersLocked()
	if !c.w.closeQueued || c.w.closeWritten || c.w.dead {
		return func() {}
	}
	c.w.closeWritten = true
	switch {
	case c.w.finishAfter:
		return c.finish
	case c.w.halfClose:
		if hc, ok := c.t.(closeWriter); ok {
			return func() { hc.CloseWrite() }
		}
	}
	return func() {}
}

// writeFailed ends a connection whose socket refused a write.
func (c *Conn) writeFailed(err error) {
	c.wmu.Lock()
	c.w.dead = true
	c.w.active = false
	c.w.corked.Store(false)
	c.wakeSendersLocked()
	c.wmu.Unlock()
	c.abort("write: " + err.Error())
}

// SendPrepared sends a prepared message: the frame for this connection's
// way of framing (plain, or compressed without context takeover at its
// level and window) is built once for all connections that share it. With
// context takeover the message is compressed for this connection alone.
func (c *Conn) SendPrepared(pm *api.PreparedMessage) error {
	return c.sendPrepared(pm, fullAsOptions)
}

// TrySendPrepared is SendPrepared that never waits for room in the queue.
func (c *Conn) TrySendPrepared(pm *api.PreparedMessage, closeIfFull bool) error {
	if closeIfFull {
		return c.sendPrepared(pm, fullClose)
	}
	return c.sendPrepared(pm, fullDrop)
}

func (c *Conn) sendPrepared(pm *api.PreparedMessage, full fullPolicy) error {
	m := pm.Message()
	op := wire.OpText
	if m.Type == api.Binary {
		op = wire.OpBinary
	}
	d := c.dfl
	var key uint32 // 0: plain
	switch {
	case d == nil || len(m.Data) < d.threshold:
	case !d.ServerNoContextTakeover:
		return c.sendDataFull(op, m.Data, full)
	default:
		key = 1<<16 | uint32(d.level)<<8 | uint32(d.ServerWindowBits)
	}
	frame := hook.PreparedFrame(pm, key, buildPrepared)
	if err := c.sendFrame(frame, full); err != nil {
		return err
	}
	c.srv.obs.Sent(len(m.Data))
	return nil
}

// buildPrepared frames a prepared message for key (see SendPrepared).
func buildPrepared(typ uint8, data []byte, key uint32) []byte {
	op := ws.OpCode(typ)
	if key == 0 {
		return wire.AppendFrame(nil, op, data)
	}
	z := wire.Compress(nil, data, int(key>>8&0xff), int(key&0xff), nil)
	return append(wire.AppendCompressedHeader(nil, op, len(z)), z...)
}

// sendFrame sends a whole frame built elsewhere and shared: it is never
// changed, and copied only into the queue.
func (c *Conn) sendFrame(frame []byte, full fullPolicy) error {
	c.wmu.Lock()
	if err := c.reserveLocked(len(frame), full); err != nil {
		return err
	}
	if corks := c.corks(); c.w.active || corks || c.w.corked.Load() {
		if cap(c.w.queue) == 0 {
			c.w.queue = getQueueBuf()
		}
		c.w.queue = append(c.w.queue, frame...)
		c.w.queued += len(frame)
		c.queuedLocked(corks)
		return nil
	}
	c.w.active = true
	c.wmu.Unlock()
	return c.writeParts(frame, nil, false)
}
