package conn

import "github.com/wsmatrix/wsmatrix/api"

// events is the event-style state of a connection, guarded by Conn.mu.
type events struct {
	onMessage   func(api.Message)
	onClose     func(*api.CloseError)
	eventStyle  bool // OnMessage was called: Receive is refused
	scheduled   bool // queued on, or running in, the event pool
	onCloseDone bool
	idle        bool // counted in Conn.waiting: nothing to run, waiting for a message
	packAsked   bool // a blocking handler waited: its request is packed (see receive)
}

// OnMessage switches to event style.
func (c *Conn) OnMessage(fn func(api.Message)) {
	c.mu.Lock()
	c.ev.onMessage, c.ev.eventStyle = fn, fn != nil
	c.flags.set(onMessage, fn != nil)
	c.scheduleLocked()
	c.idleLocked()
	c.mu.Unlock()
	c.resumeReader()
	c.helpNow() // on a blocking socket, a helper reads for the callbacks
	if rd := c.rd; fn != nil && rd != nil && rd.attached.Load() && rd.direct {
		// A helper already waiting in Go's poller (the handler was away)
		// stops waiting and hands the socket to a poller now
		// (poll_linux.go), not after the next message.
		rd.deadline(aLongTimeAgo)
	}
}

// OnClose registers fn to run once when the connection ends.
func (c *Conn) OnClose(fn func(*api.CloseError)) {
	c.mu.Lock()
	c.ev.onClose = fn
	c.scheduleLocked()
	c.mu.Unlock()
	c.helpNow()
}

// moreLocked reports whether the callbacks have something to run.
func (c *Conn) moreLocked() bool {
	return (c.ev.onMessage != nil && c.inbox.len() > 0) ||
		(c.ev.onClose != nil && c.state >= stClosing && !c.ev.onCloseDone)
}

// scheduleLocked queues the connection on the event pool when its
// callbacks have something to run.
func (c *Conn) scheduleLocked() {
	if c.ev.scheduled || !c.moreLocked() {
		return
	}
	c.ev.scheduled = true
	c.idleLocked()
	c.srv.pool.schedule(c)
}

// idleLocked keeps Conn.waiting in step: an event-style connection whose
// callback is not scheduled waits for its next message, so Feed may take
// a message of up to ReadLimit for it.
func (c *Conn) idleLocked() {
	idle := c.ev.onMessage != nil && !c.ev.scheduled
	if idle != c.ev.idle {
		c.ev.idle = idle
		if idle {
			c.waiting.Add(1)
		} else {
			c.waiting.Add(-1)
		}
	}
}

// runEvents delivers up to a batch of messages, then OnClose once the
// connection has ended and the inbox is empty. It runs on the pool.
func (c *Conn) runEvents() (again bool) {
	for range 64 {
		c.mu.Lock()
		fn := c.ev.onMessage
		var m api.Message
		ok := fn != nil
		if ok {
			m, ok = c.popLocked()
			c.busy = ok
		}
		c.mu.Unlock()
		if !ok {
			break
		}
		c.srv.obs.Received(len(m.Data))
		if c.rd != nil && c.rd.direct {
			c.rd.inHand.Store(handEvents)
		}
		c.flags.set(inEvent, true)
		done := c.protect(func() { fn(m) })
		c.flags.set(inEvent, false)
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
		if !done {
			c.batchDone()
			return c.reschedule()
		}
	}
	c.batchDone()
	c.closeIfDrained()
	c.mu.Lock()
	var onClose func(*api.CloseError)
	if c.state >= stClosing && c.ev.onClose != nil && !c.ev.onCloseDone && (c.ev.onMessage == nil || c.inbox.len() == 0) {
		c.ev.onCloseDone = true
		onClose = c.ev.onClose
	}
	ce := c.closeErrLocked()
	c.mu.Unlock()
	if onClose != nil {
		c.protect(func() { onClose(ce) })
	}
	return c.reschedule()
}

// batchDone: what OnMessage sent while more messages waited goes out.
func (c *Conn) batchDone() {
	if c.rd != nil && c.rd.inHand.CompareAndSwap(handEvents, 0) && c.uncork() {
		c.rd.away.Stop()
	}
}

func (c *Conn) reschedule() bool {
	c.mu.Lock()
	more := c.moreLocked()
	if !more {
		c.ev.scheduled = false
		c.idleLocked()
	}
	c.mu.Unlock()
	if !more {
		c.resumeReader()
	}
	return more
}

// eventStyle reports whether OnMessage was called.
func (c *Conn) eventStyle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ev.eventStyle
}
