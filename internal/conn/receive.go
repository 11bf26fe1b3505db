package conn

import (
	"context"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// inbox holds the received messages waiting for the handler. Its storage
// is dropped whenever it empties, so an idle connection holds none.
type inbox struct {
	msgs []api.Message
	head int
}

func (q *inbox) len() int { return len(q.msgs) - q.head }

// grow makes room for one more message: one slot for the first (the usual
// case, one message at a time: 32 bytes, not append's 128), then twice as
// many as wait, 4 at least, dropping the slots already taken. It makes
// and copies instead of append's growth, and takes no message:
// growslice's frame is three times makeslice's, and this runs deep under
// a blocking handler's Receive (see Receive).
//
//go:noinline
func (q *inbox) grow() {
	live := q.msgs[q.head:]
	size := 1
	if len(live) > 0 {
		size = max(4, 2*len(live))
	}
	msgs := make([]api.Message, len(live), size)
	copy(msgs, live)
	q.msgs, q.head = msgs, 0
}

func (q *inbox) pop() (api.Message, bool) {
	if q.head == len(q.msgs) {
		return api.Message{}, false
	}
	m := q.msgs[q.head]
	q.msgs[q.head] = api.Message{}
	q.head++
	if q.head == len(q.msgs) {
		q.msgs, q.head = nil, 0 // an idle connection keeps no storage, not even a small one
	}
	return m, true
}

// Receive returns the next message.
//
// When the inbox is empty, a blocking handler reads its socket itself
// (canReadDirect): receive returns and asks, and the read happens here,
// so that receive's frame is not on the stack under the read, the parse
// and the delivery, whose allocations must stay within the handler's
// first 2 KiB (TestBlockingHandlersKeepTheirFirstStack).
func (c *Conn) Receive() (api.Message, error) {
	triedDirect := false
	for {
		m, readNow, err := c.receive(nil, nil, false, triedDirect)
		if !readNow {
			return m, err
		}
		read := false
		if c.takeReadRole() {
			read = c.readStep(false)
			c.rd.role.Unlock()
		}
		c.waiting.Add(-1)
		// Either way look at the inbox again before waiting: a helper may
		// have delivered meanwhile.
		triedDirect = !read
	}
}

// ReceiveTimeout returns the next message or ErrTimeout after d.
func (c *Conn) ReceiveTimeout(d time.Duration) (api.Message, error) {
	if d <= 0 {
		m, _, err := c.receive(nil, nil, true, false)
		return m, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	m, _, err := c.receive(t.C, nil, false, false)
	return m, err
}

// ReceiveContext returns the next message or ctx.Err().
func (c *Conn) ReceiveContext(ctx context.Context) (api.Message, error) {
	if ctx == nil || ctx.Done() == nil { // never done: Receive, which may read the socket itself
		return c.Receive()
	}
	m, _, err := c.receive(nil, ctx, false, false)
	return m, err
}

// testHookBeforeWait runs between deciding to wait and waiting, to test
// wake-ups that arrive in between.
var testHookBeforeWait func()

// receive waits for the next message: with a timeout, ctx, or neither,
// or not at all (poll). With neither, which only Receive asks for (a
// ReceiveContext whose ctx is never done is Receive), it may return
// readNow instead, unless triedDirect and no wait came between: the
// caller reads the socket (see Receive), and calls again.
func (c *Conn) receive(timeout <-chan time.Time, ctx context.Context, poll, triedDirect bool) (api.Message, bool, error) {
	var cancel <-chan struct{}
	if ctx != nil {
		cancel = ctx.Done()
	}
	if rd := c.rd; rd != nil && rd.inHand.Load() != 0 {
		c.backFromMessage()
	}
	c.mu.Lock()
	c.busy = false // the handler is back for its next message
	for {
		if c.ev.eventStyle {
			c.mu.Unlock()
			return api.Message{}, false, api.ErrEventStyle
		}
		if m, ok := c.popLocked(); ok { // messages received before the end are never lost
			c.busy = true
			if c.inbox.len() > 0 {
				c.wakeOneLocked() // pass the wake-up on: another Receive may wait
			}
			c.mu.Unlock()
			// The observer hears of a message as the handler takes it: here,
			// not deep in the read path (user code, and stack depth).
			c.srv.obs.Received(len(m.Data))
			c.handlerAway()
			return m, false, nil
		}
		if c.state == stDraining { // what came before the protocol error, or the peer's close, is done
			c.mu.Unlock()
			c.endDrain()
			c.mu.Lock()
			continue
		}
		if c.state >= stClosing {
			err := c.closeErrLocked()
			c.mu.Unlock()
			return api.Message{}, false, err
		}
		if poll {
			c.mu.Unlock()
			return api.Message{}, false, api.ErrTimeout
		}
		if !c.ev.packAsked {
			// The handler waits for its first message: from now on the
			// request is kept packed, as an event-style connection keeps it
			// (Request rebuilds it on first use). Packed on a goroutine of
			// its own, whose stack may grow for it, not the handler's.
			c.ev.packAsked = true
			go c.packRequest()
		}
		if !triedDirect && timeout == nil && cancel == nil && c.canReadDirect() {
			// Read the socket in this goroutine, unless a helper reads:
			// the caller does, waiting counted until it is done.
			c.waiting.Add(1)
			c.mu.Unlock()
			return api.Message{}, true, nil
		}
		triedDirect = false
		if c.ready == nil {
			c.ready = make(chan struct{}, 1)
		}
		ready := c.ready
		c.waiting.Add(1)
		c.mu.Unlock()
		c.resumeReader() // a waiting handler takes a message of up to ReadLimit
		c.help()         // on a blocking socket: this wait does not read (a deadline, a context, or a helper reads now)
		if testHookBeforeWait != nil {
			testHookBeforeWait()
		}
		var err error
		if timeout == nil && cancel == nil {
			// Receive: a plain receive parks with a smaller stack than a
			// select, and a blocking handler's goroutine stays at its
			// first 2 KiB through a whole echo.
			<-ready
		} else {
			err = waitReady(ready, timeout, cancel, ctx)
		}
		c.waiting.Add(-1)
		if err != nil {
			return api.Message{}, false, err
		}
		c.mu.Lock()
	}
}

// backFromMessage: the handler is back in Receive. What it corked while
// more messages waited goes out once none wait: it is about to read or
// wait.
//
//go:noinline
func (c *Conn) backFromMessage() {
	c.rd.inHand.Store(0)
	if c.inN.Load() == 0 {
		c.uncork()
	}
}

// waitReady waits for a wake-up, the timeout or ctx. It is out of line:
// receive's frame is on the path of every message a blocking handler
// reads from its own socket, and a select's cases take room.
//
//go:noinline
func waitReady(ready <-chan struct{}, timeout <-chan time.Time, cancel <-chan struct{}, ctx context.Context) error {
	select {
	case <-ready:
		return nil
	case <-timeout:
		return api.ErrTimeout
	case <-cancel:
		return ctx.Err()
	}
}

// popLocked takes the oldest message of the inbox and lets a paused reader
// go on.
func (c *Conn) popLocked() (api.Message, bool) {
	m, ok := c.inbox.pop()
	if ok {
		c.inN.Add(-1)
		c.inBytes.Add(-int64(len(m.Data)))
		c.resumeReader()
	}
	return m, ok
}

// wakeOneLocked wakes one waiting Receive, if any.
func (c *Conn) wakeOneLocked() {
	if c.ready != nil && c.state < stClosing { // once closing, ready is closed: everyone is awake
		select {
		case c.ready <- struct{}{}:
		default: // a token is pending: whoever takes it passes it on
		}
	}
}

// deliver puts a whole received message in the inbox.
func (c *Conn) deliver(m api.Message) {
	c.mu.Lock()
	if c.state >= stClosing {
		c.mu.Unlock()
		return // after a close frame, data is dropped (RFC 6455 5.5.1)
	}
	// Feed checked the bounds and is the only sender. (The push is
	// written here, as it would be inlined: the allocation in grow is a
	// frame less deep.)
	q := &c.inbox
	if len(q.msgs) == cap(q.msgs) {
		q.grow()
	}
	q.msgs = q.msgs[:len(q.msgs)+1]
	q.msgs[len(q.msgs)-1] = m
	c.inN.Add(1)
	c.inBytes.Add(int64(len(m.Data)))
	c.wakeOneLocked()
	c.scheduleLocked()
	c.mu.Unlock()
}
