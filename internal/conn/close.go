package conn

import (
	"fmt"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// state is where a connection is in its life. It only moves forward.
type state uint8

const (
	// stOpen: messages flow both ways.
	stOpen state = iota
	// stDraining: the peer broke the protocol, or sent its close frame
	// while messages waited for the handler. Nothing more is read; the
	// messages received before are still handed to the handler, and what
	// it sends in reply goes out, then the close frame with the error's
	// code, or the answer to the peer's (at the latest after CloseTimeout).
	stDraining
	// stClosing: a close frame is queued, ours or our answer to the
	// peer's. No message is delivered or sent any more; the handler has
	// been told (closeErr, Context, OnClose).
	stClosing
	// stClosed: the socket is closed.
	stClosed
)

// endState is what a connection holds once it drains or closes (or once
// someone waits for its end), under mu: an open connection carries one
// pointer for it.
type endState struct {
	closeErr   *api.CloseError // what the handler is told, once ending
	fail       *api.CloseError // the protocol error, or the peer's close, being drained (stDraining)
	peerFail   bool            // fail is the peer's close: answer it (peerClose) rather than send it
	ended      chan struct{}   // made by a waiter; closed at stClosed
	closeTimer *time.Timer     // bounds the close handshake, or the drain
	afterClose int64           // input bytes fed since the close began (overAfterClose)
}

// endLocked returns the end state, made if need be.
func (c *Conn) endLocked() *endState {
	if c.end == nil {
		c.end = new(endState)
	}
	return c.end
}

// closeErrLocked is what the handler is told once the connection ends
// (nil before).
func (c *Conn) closeErrLocked() *api.CloseError {
	if c.end == nil {
		return nil
	}
	return c.end.closeErr
}

// failLocked is the protocol error being drained, if any.
func (c *Conn) failLocked() *api.CloseError {
	if c.end == nil {
		return nil
	}
	return c.end.fail
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
	if c.state == stClosed {
		return closedCh
	}
	e := c.endLocked()
	if e.ended == nil {
		e.ended = make(chan struct{})
	}
	return e.ended
}

// Close starts the closing handshake and waits, at most CloseTimeout, for
// the connection to end.
func (c *Conn) Close(code api.StatusCode, reason string) error {
	if err := wire.CheckClose(code, reason); err != nil {
		return fmt.Errorf("wsmatrix: Close(%d): %w", code, err)
	}
	c.closeWith(code, reason)
	<-c.endedCh() // bounded: begin armed CloseTimeout
	return nil
}

// begin moves the connection to stClosing with ce as what the handler is
// told, and arms CloseTimeout; it reports false when it was already
// closing.
func (c *Conn) begin(ce *api.CloseError) bool {
	c.mu.Lock()
	if c.state >= stClosing {
		c.mu.Unlock()
		return false
	}
	e := c.endLocked()
	c.state, e.closeErr = stClosing, ce
	c.flags.set(ending, true)
	if e.closeTimer != nil {
		e.closeTimer.Stop() // the drain's timer
	}
	e.closeTimer = time.AfterFunc(c.srv.opts.CloseTimeout, func() { c.abort("close handshake timed out") })
	if c.ready != nil {
		close(c.ready) // wakes every waiting Receive; nothing is delivered after this
	}
	c.ready = closedCh
	c.scheduleLocked()
	cx := c.cx
	c.mu.Unlock()
	if cx != nil {
		cx.cancel()
	}
	c.resumeReader() // a paused reader reads on: data is dropped now, the peer's close is read
	c.helpNow()      // on a blocking socket, someone reads the peer's close while the handler does not
	return true
}

// closeWith sends a close frame with code and ends the connection once the
// peer answers or CloseTimeout passes.
func (c *Conn) closeWith(code api.StatusCode, reason string) {
	if c.begin(&api.CloseError{Code: code, Reason: reason}) {
		c.mu.Lock()
		answer := c.peerClosed // the peer's close came (we were draining): ours answers it, nothing more comes
		c.mu.Unlock()
		c.queueClose(code, reason, answer)
	}
}

// peerClose handles the peer's close frame: answer it, then close the
// socket (the server closes TCP first, RFC 6455 7.1.1).
func (c *Conn) peerClose(code api.StatusCode, reason string) {
	c.mu.Lock()
	c.peerClosed = true
	if c.state == stOpen && c.inbox.len() > 0 && (c.ev.onMessage != nil || c.busy || c.ev.packAsked) {
		// Messages came before the close, and the handler takes messages
		// (OnMessage, or it has called Receive): it takes them, and its
		// answers go out, before the close frame that answers. A handler
		// that never asked for one (it only sends, or has only OnClose)
		// is told at once, as the peer is answered.
		e := c.endLocked()
		c.state, e.fail, e.peerFail = stDraining, &api.CloseError{Code: code, Reason: reason}, true
		e.closeTimer = time.AfterFunc(c.srv.opts.CloseTimeout, c.endDrain)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.answerClose(code, reason)
}

// answerClose answers the peer's close frame, then closes the socket.
func (c *Conn) answerClose(code api.StatusCode, reason string) {
	if c.begin(&api.CloseError{Code: code, Reason: reason}) {
		c.queueClose(code, "", true)
		return
	}
	// Our close frame was queued first: this is the answer.
	c.wmu.Lock()
	written := c.w.closeWritten
	c.w.finishAfter = true
	c.wmu.Unlock()
	if written {
		c.finish()
	}
}

// protocolError handles input that broke RFC 6455: the messages that came
// before it are still handled (stDraining), then the connection closes
// with ce's code, and its sending side ends after the close frame so that
// the peer sees EOF.
func (c *Conn) protocolError(ce *api.CloseError) {
	c.wmu.Lock()
	c.w.halfClose = true
	c.wmu.Unlock()
	c.mu.Lock()
	if c.state != stOpen {
		c.mu.Unlock()
		return // already failing or closing: input is discarded, counted once
	}
	e := c.endLocked()
	c.state, e.fail = stDraining, ce
	e.closeTimer = time.AfterFunc(c.srv.opts.CloseTimeout, c.endDrain)
	now := c.drainedLocked()
	c.mu.Unlock()
	c.srv.logProtocolClose(c, ce)
	if now {
		c.endDrain()
	}
}

// endDrain ends a draining connection: it sends the protocol error's close
// frame, or answers the peer's. It does nothing once the connection is
// closing.
func (c *Conn) endDrain() {
	c.mu.Lock()
	if c.state != stDraining {
		c.mu.Unlock()
		return
	}
	fail, peer := c.end.fail, c.end.peerFail
	c.mu.Unlock()
	if peer {
		c.answerClose(fail.Code, fail.Reason)
		return
	}
	c.closeWith(fail.Code, fail.Reason)
}

// drainedLocked reports whether a draining connection has nothing left for
// its handler: the inbox is empty and the handler is not working on a
// message it took.
func (c *Conn) drainedLocked() bool {
	return c.state == stDraining && c.inbox.len() == 0 && !c.busy
}

// closeIfDrained closes a draining connection once the handler is done
// with what came before the protocol error or the peer's close.
func (c *Conn) closeIfDrained() {
	c.mu.Lock()
	now := c.drainedLocked()
	c.mu.Unlock()
	if now {
		c.endDrain()
	}
}

// Gone tells the connection its socket ended (EOF, reset, closed) without
// a close handshake; the handler sees 1006. It may be called more than once.
func (c *Conn) Gone(err error) {
	c.mu.Lock()
	peerDrain := c.state == stDraining && c.end.peerFail
	c.mu.Unlock()
	if peerDrain {
		// The peer closed properly, then ended its side of TCP (a
		// half-close, or gorilla's close message then Close): the
		// handler is told the peer's code; what can still go out does,
		// and the socket closes after the answer (or at CloseTimeout).
		c.endDrain()
		return
	}
	c.begin(&api.CloseError{Code: api.StatusAbnormalClosure, Reason: "connection lost: " + err.Error()})
	c.finish()
}

// Fail closes the connection with code, for limits a runtime enforces
// itself.
func (c *Conn) Fail(code api.StatusCode, reason string) { c.closeWith(code, reason) }

// abort cuts the connection without a close handshake.
func (c *Conn) abort(why string) {
	c.begin(&api.CloseError{Code: api.StatusAbnormalClosure, Reason: why})
	c.finish()
}

// finish closes the socket once; the connection has ended.
func (c *Conn) finish() {
	c.mu.Lock()
	if c.state == stClosed {
		c.mu.Unlock()
		return
	}
	c.state = stClosed
	e := c.endLocked() // made by begin, which comes first
	if e.closeTimer != nil {
		e.closeTimer.Stop()
	}
	if e.ended != nil {
		close(e.ended)
	}
	ce := e.closeErr
	c.mu.Unlock()
	c.wmu.Lock()
	c.w.dead = true // nothing more is written to a closed socket
	c.wakeSendersLocked()
	c.wmu.Unlock()
	c.t.Close()
	c.srv.obs.Closed(ce.Code)
	c.srv.forget(c)
}
