package conn

import (
	"errors"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// The peer sent "a" and its close frame together while the handler was
// taking messages; the handler takes "a" and closes with a code of its own
// (a common handler: answer, then Close). The peer's close frame has
// already come, so our close frame is the answer: the socket closes once
// it is out, and Close returns at once.
func TestCloseDuringPeerCloseDrainEndsOnceOut(t *testing.T) {
	o := quiet()
	o.CloseTimeout = 2 * time.Second
	c, f := newFakeConn(t, o)
	took := make(chan time.Duration, 1)
	release := drainWhileBusy(t, c, func(m api.Message) {
		if m.String() != "a" {
			return
		}
		start := time.Now()
		if err := c.Close(4000, "done"); err != nil {
			t.Error(err)
		}
		took <- time.Since(start)
	})
	release()
	select {
	case d := <-took:
		t.Logf("frames %q, Close took %v, socket closed %v", opcodes(f.frames(t)), d, f.isClosed())
		if d > 500*time.Millisecond {
			t.Fatalf("Close took %v: the socket stayed open after our close frame, waiting for a close frame the peer already sent (CloseTimeout %v)", d, o.CloseTimeout)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was never given a")
	}
}

// A blocking handler that took one message and then only sends (a
// subscription) is busy for good: with nothing more waiting, the peer's
// close is answered at once and the handler told (Context done, Send
// fails), not after CloseTimeout.
func TestPeerCloseWithABusyHandlerIsAnsweredAtOnce(t *testing.T) {
	o := quiet()
	o.CloseTimeout = 1 * time.Second
	c, f := newFakeConn(t, o)
	c.Feed(clientFrame(ws.OpText, []byte("subscribe")))
	if _, err := c.Receive(); err != nil {
		t.Fatal(err)
	}
	ctx := c.Context()
	c.Feed(clientFrame(ws.OpClose, []byte{0x03, 0xe8}))
	time.Sleep(300 * time.Millisecond)
	sendErr := c.SendText("tick")
	t.Logf("300 ms after the peer's close: state %v, ctx.Err %v, Send %v, frames %q", c.state, ctx.Err(), sendErr, opcodes(f.frames(t)))
	var ce *api.CloseError
	if ctx.Err() == nil || !errors.As(sendErr, &ce) {
		t.Fatalf("the handler is not told of the peer's close 300 ms after it came (state %v)", c.state)
	}
}

// An event-style connection with only OnClose (it ignores what the peer
// sends): one message from the peer sits in the inbox for good, and the
// peer's close is answered at once, not after CloseTimeout.
func TestPeerCloseWithOnCloseOnlyIsAnsweredAtOnce(t *testing.T) {
	o := quiet()
	o.CloseTimeout = 1 * time.Second
	c, f := newFakeConn(t, o)
	closed := make(chan *api.CloseError, 1)
	c.OnClose(func(ce *api.CloseError) { closed <- ce })
	c.Feed(clientFrame(ws.OpText, []byte("hello")))
	start := time.Now()
	c.Feed(clientFrame(ws.OpClose, []byte{0x03, 0xe8}))
	ce := <-closed
	t.Logf("OnClose(%v) after %v, frames %q", ce, time.Since(start), opcodes(f.frames(t)))
	if time.Since(start) > 500*time.Millisecond {
		t.Fatalf("the peer's close was answered after %v", time.Since(start))
	}
}

// A client that sends a message, its close frame (1000) and then ends its
// side (gorilla's WriteMessage(CloseMessage) then Close(), or a
// half-close) while the handler is busy: the drain ends with the EOF, and
// the handler is told the peer's 1000, not 1006, after the messages.
func TestPeerCloseThenEOFKeepsThePeersCode(t *testing.T) {
	c, _ := newFakeConn(t, quiet())
	got := make(chan string, 4)
	closed := make(chan *api.CloseError, 1)
	c.OnClose(func(ce *api.CloseError) { closed <- ce })
	release := drainWhileBusy(t, c, func(m api.Message) { got <- m.String() })
	c.Gone(errors.New("EOF"))
	release()
	select {
	case ce := <-closed:
		if ce.Code != api.StatusNormalClosure {
			t.Fatalf("the handler is told %v; the peer closed with 1000", ce)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose not called")
	}
	if a, b := <-got, <-got; a != "x" || b != "a" {
		t.Fatalf("messages %q %q", a, b)
	}
}

// TestServerKeepsItsOwnSubprotocols: Conn.Subprotocol indexes the
// server's Subprotocols, so the server keeps a copy of the caller's slice.
func TestServerKeepsItsOwnSubprotocols(t *testing.T) {
	o := quiet()
	o.Subprotocols = []string{"chat", "v2"}
	o.OriginPatterns = []string{"*.example.com"}
	s := newTestServer(t, o)
	o.Subprotocols[0], o.OriginPatterns[0] = "changed", "changed"
	if s.opts.Subprotocols[0] != "chat" || s.opts.OriginPatterns[0] != "*.example.com" {
		t.Fatalf("the server's options follow the caller's slices: %q %q", s.opts.Subprotocols, s.opts.OriginPatterns)
	}
}

// newFakeConn is a connection on a socketFake with room for 1 MiB.
func newFakeConn(t *testing.T, o api.Options) (*Conn, *socketFake) {
	f := newSocketFake(1 << 20)
	return newTestConn(newTestServer(t, o), f), f
}

// drainWhileBusy gives c an OnMessage that passes each message to handle,
// and is kept busy with the first, "x", while "a" and the peer's close
// (1000) arrive: c drains until release is called.
func drainWhileBusy(t *testing.T, c *Conn, handle func(api.Message)) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	c.OnMessage(func(m api.Message) {
		if m.String() == "x" {
			<-gate
		}
		handle(m)
	})
	c.Feed(clientFrame(ws.OpText, []byte("x")))
	c.Feed(append(clientFrame(ws.OpText, []byte("a")), clientFrame(ws.OpClose, []byte{0x03, 0xe8})...))
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st != stDraining {
		t.Fatalf("state %v, want draining", st)
	}
	return func() { close(gate) }
}
