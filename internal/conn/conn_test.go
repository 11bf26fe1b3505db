package conn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// fakeTransport records what a connection writes. A write blocks while
// stuck is set, as a socket whose peer stopped reading does.
type fakeTransport struct {
	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
	stuck  chan struct{} // non-nil: writes wait until it is closed
}

func (f *fakeTransport) Write(b []byte) (int, error) {
	f.mu.Lock()
	stuck := f.stuck
	f.mu.Unlock()
	if stuck != nil {
		<-stuck
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(b)
}

func (f *fakeTransport) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeTransport) written() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.out.Bytes()...)
}

// clientFrame is a masked frame as a client sends it.
func clientFrame(op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	mask := ws.NewMask()
	ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: mask})
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	b.Write(p)
	return b.Bytes()
}

func newTestServer(t *testing.T, o api.Options) *Server {
	t.Helper()
	s, err := NewServer(api.NewRouter(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Nothing of the test's server outlives it: its connections end
		// (fake ones have no handler to wait for) and with them the
		// keepalive clock and the flushers.
		for _, c := range s.snapshot() {
			c.Gone(errTest)
		}
		done := make(chan struct{})
		go func() {
			s.live.Wait()
			s.pool.wait()
			s.clockWG.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the test's server still runs 5 s after its connections ended")
		}
	})
	return s
}

func newTestConn(s *Server, tr Transport) *Conn {
	s.admit()
	r := httptest.NewRequest(http.MethodGet, "/t", nil)
	return s.newConnAdmitted(tr, r, 0, netip.MustParseAddrPort("127.0.0.1:1"), nil, nil)
}

// readFrames decodes the server frames in b, up to an incomplete one.
func readFrames(t *testing.T, b []byte) []ws.Frame {
	t.Helper()
	var fs []ws.Frame
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		f, err := ws.ReadFrame(r)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			break // the rest is still being written
		}
		if err != nil {
			t.Fatalf("server wrote a broken frame: %v", err)
		}
		fs = append(fs, f)
	}
	return fs
}

var errTest = &api.CloseError{Code: api.StatusAbnormalClosure, Reason: "test over"}

// TestClockNeverBlocksOnOneConn: a connection whose socket takes nothing
// (its writes block) must not delay the pings of the others.
func TestClockNeverBlocksOnOneConn(t *testing.T) {
	s := newTestServer(t, api.Options{PingInterval: 50 * time.Millisecond, PongTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	stuckTr := &fakeTransport{stuck: make(chan struct{})}
	defer close(stuckTr.stuck)
	stuck := newTestConn(s, stuckTr)
	defer stuck.Gone(errTest)
	okTr := &fakeTransport{}
	ok := newTestConn(s, okTr)
	defer ok.Gone(errTest)
	deadline := time.Now().Add(3 * time.Second)
	answered := 0
	for time.Now().Before(deadline) {
		pings := 0
		for _, f := range readFrames(t, okTr.written()) {
			if f.Header.OpCode == ws.OpPing {
				pings++
			}
		}
		if pings > answered {
			answered = pings
			ok.Feed(clientFrame(ws.OpPong, nil))
		}
		if pings >= 3 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the keepalive clock stalled on a connection whose writes block: fewer than 3 pings in 3 s at a 50 ms interval (got %d; %q)", answered, okTr.written())
}

// TestConcurrentReceiversNoLostWakeUp: two Receives decided to wait, and
// two messages arrive before either waits. Each must get one: with one
// wake-up token and nothing passing it on, the second stayed blocked with
// a message in the inbox.
func TestConcurrentReceiversNoLostWakeUp(t *testing.T) {
	testHookBeforeWait = func() { time.Sleep(20 * time.Millisecond) }
	defer func() { testHookBeforeWait = nil }()
	s := newTestServer(t, api.Options{PingInterval: api.Disabled})
	c := newTestConn(s, &fakeTransport{})
	defer c.Gone(errTest)
	got := make(chan string, 2)
	for range 2 {
		go func() {
			if m, err := c.Receive(); err == nil {
				got <- m.String()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond) // both are between deciding to wait and waiting
	c.Feed(append(clientFrame(ws.OpText, []byte("a")), clientFrame(ws.OpText, []byte("b"))...))
	for i := range 2 {
		select {
		case <-got:
		case <-time.After(2 * time.Second):
			t.Fatalf("receiver %d still waits while a message is in the inbox", i+1)
		}
	}
}

// socketFake is a TryWriter transport: TryWrite takes at most room bytes
// (a socket buffer), Write blocks until room grows or it is closed.
type socketFake struct {
	mu     sync.Mutex
	cond   *sync.Cond
	room   int
	out    bytes.Buffer
	closed bool
	halfed bool
}

func newSocketFake(room int) *socketFake {
	f := &socketFake{room: room}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *socketFake) TryWrite(a, b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errTest
	}
	n := 0
	for _, p := range [][]byte{a, b} {
		k := min(len(p), f.room)
		f.out.Write(p[:k])
		f.room -= k
		n += k
		if k < len(p) {
			break
		}
	}
	return n, nil
}

func (f *socketFake) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for n < len(b) {
		for f.room == 0 && !f.closed {
			f.cond.Wait()
		}
		if f.closed {
			return n, errTest
		}
		k := min(len(b)-n, f.room)
		f.out.Write(b[n : n+k])
		f.room -= k
		n += k
	}
	return n, nil
}

// drain lets the peer read: the socket takes n more bytes.
func (f *socketFake) drain(n int) {
	f.mu.Lock()
	f.room += n
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *socketFake) Close() error {
	f.mu.Lock()
	f.closed = true
	f.cond.Broadcast()
	f.mu.Unlock()
	return nil
}

func (f *socketFake) CloseWrite() error {
	f.mu.Lock()
	f.halfed = true
	f.mu.Unlock()
	return nil
}

func (f *socketFake) frames(t *testing.T) []ws.Frame {
	f.mu.Lock()
	b := append([]byte(nil), f.out.Bytes()...)
	f.mu.Unlock()
	return readFrames(t, b)
}

func (f *socketFake) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func opcodes(fs []ws.Frame) string {
	var b strings.Builder
	for _, f := range fs {
		switch f.Header.OpCode {
		case ws.OpText:
			b.WriteString("T" + string(f.Payload) + " ")
		case ws.OpBinary:
			b.WriteString("B ")
		case ws.OpClose:
			b.WriteString("C ")
		case ws.OpPing:
			b.WriteString("ping ")
		case ws.OpPong:
			b.WriteString("pong ")
		}
	}
	return strings.TrimSpace(b.String())
}

func quiet() api.Options {
	return api.Options{PingInterval: api.Disabled, Logger: slog.New(slog.DiscardHandler)}
}

// TestStates walks the close state machine through its paths.
func TestStates(t *testing.T) {
	t.Run("server_closes_then_peer_answers", func(t *testing.T) {
		s := newTestServer(t, quiet())
		f := newSocketFake(1 << 20)
		c := newTestConn(s, f)
		done := make(chan error, 1)
		go func() { done <- c.Close(4000, "bye") }()
		waitFor(t, "close frame", func() bool { return opcodes(f.frames(t)) == "C" })
		if c.state != stClosing || f.isClosed() {
			t.Fatalf("after our close frame: state %v, socket closed %v; want closing, open", c.state, f.isClosed())
		}
		c.Feed(clientFrame(ws.OpClose, []byte{0x0f, 0xa0}))
		if err := <-done; err != nil || c.state != stClosed || !f.isClosed() {
			t.Fatalf("after the answer: Close %v, state %v, socket closed %v", err, c.state, f.isClosed())
		}
	})
	t.Run("peer_closes_first", func(t *testing.T) {
		s := newTestServer(t, quiet())
		f := newSocketFake(1 << 20)
		c := newTestConn(s, f)
		c.Feed(clientFrame(ws.OpClose, []byte{0x03, 0xe9, 'x'}))
		if got := opcodes(f.frames(t)); got != "C" || c.state != stClosed || !f.isClosed() {
			t.Fatalf("frames %q, state %v, closed %v: want an answer, then the socket closed", got, c.state, f.isClosed())
		}
		_, err := c.Receive()
		var ce *api.CloseError
		if !errors.As(err, &ce) || ce.Code != 1001 || ce.Reason != "x" {
			t.Fatalf("Receive after the peer's close: %v", err)
		}
	})
	t.Run("protocol_error_drains_then_closes", func(t *testing.T) {
		s := newTestServer(t, quiet())
		f := newSocketFake(1 << 20)
		c := newTestConn(s, f)
		c.Feed(append(append(clientFrame(ws.OpText, []byte("a")), clientFrame(ws.OpText, []byte("b"))...), clientFrame(3, nil)...))
		if c.state != stDraining {
			t.Fatalf("state %v after a reserved opcode behind two messages, want draining", c.state)
		}
		for _, want := range []string{"a", "b"} {
			m, err := c.Receive()
			if err != nil || m.String() != want {
				t.Fatalf("Receive: %q %v, want %q", m.String(), err, want)
			}
			c.SendText(want)
		}
		_, err := c.Receive() // back for more: now the close goes out
		var ce *api.CloseError
		if !errors.As(err, &ce) || ce.Code != api.StatusProtocolError {
			t.Fatalf("Receive after the drain: %v, want 1002", err)
		}
		if got := opcodes(f.frames(t)); got != "Ta Tb C" {
			t.Fatalf("frames %q, want the replies, then the close", got)
		}
		f.mu.Lock()
		halfed := f.halfed
		f.mu.Unlock()
		if !halfed {
			t.Fatal("no half-close after the 1002: the peer cannot be parsed any more")
		}
	})
	t.Run("protocol_error_bounded_by_close_timeout", func(t *testing.T) {
		o := quiet()
		o.CloseTimeout = 50 * time.Millisecond
		s := newTestServer(t, o)
		f := newSocketFake(1 << 20)
		c := newTestConn(s, f)
		c.Feed(append(clientFrame(ws.OpText, []byte("a")), clientFrame(3, nil)...))
		// Nobody takes "a": the close still goes out, and the socket closes.
		waitFor(t, "the socket to close", f.isClosed)
		if got := opcodes(f.frames(t)); got != "C" {
			t.Fatalf("frames %q", got)
		}
	})
	t.Run("gone", func(t *testing.T) {
		s := newTestServer(t, quiet())
		f := newSocketFake(1 << 20)
		c := newTestConn(s, f)
		ctx := c.Context()
		c.Gone(io.EOF)
		if c.state != stClosed || ctx.Err() == nil || !f.isClosed() {
			t.Fatalf("state %v, ctx %v, closed %v", c.state, ctx.Err(), f.isClosed())
		}
		if err := c.SendText("x"); err == nil {
			t.Fatal("Send after Gone succeeded")
		}
	})
}

// TestSendQueue checks the byte budget and both policies with a socket
// that stopped taking bytes, for one sender.
func TestSendQueue(t *testing.T) {
	for _, policy := range []api.QueuePolicy{api.QueueClose, api.QueueBlock} {
		t.Run(policy.String(), func(t *testing.T) {
			o := quiet()
			o.SendQueueBytes = 1000
			o.SendQueueFull = policy
			o.WriteTimeout = 50 * time.Millisecond
			o.CloseTimeout = 50 * time.Millisecond
			s := newTestServer(t, o)
			f := newSocketFake(10) // a socket that takes 10 bytes, then nothing
			c := newTestConn(s, f)
			p := make([]byte, 600)
			if err := c.SendBinary(p); err != nil { // an empty queue takes any size
				t.Fatal(err)
			}
			start := time.Now()
			err := c.SendBinary(p) // 600 + 600 > 1000
			if !errors.Is(err, api.ErrQueueFull) {
				t.Fatalf("Send past the budget: %v, want ErrQueueFull", err)
			}
			if d := time.Since(start); policy == api.QueueClose && d > 40*time.Millisecond {
				t.Fatalf("QueueClose waited %v", d)
			}
			_, err = c.Receive()
			var ce *api.CloseError
			if !errors.As(err, &ce) || ce.Code != api.StatusPolicyViolation {
				t.Fatalf("after the queue was full: %v, want 1008", err)
			}
			f.drain(1 << 20) // the peer reads again: the queue, then the close frame
			waitFor(t, "frames", func() bool { return opcodes(f.frames(t)) == "B C" })
		})
	}
	t.Run("room_again", func(t *testing.T) {
		o := quiet()
		o.SendQueueBytes = 1000
		o.WriteTimeout = 5 * time.Second
		s := newTestServer(t, o)
		f := newSocketFake(10)
		c := newTestConn(s, f)
		defer c.Gone(errTest)
		c.SendBinary(make([]byte, 600))
		res := make(chan error, 1)
		go func() { res <- c.SendBinary(make([]byte, 600)) }()
		time.Sleep(20 * time.Millisecond)
		f.drain(1 << 20) // the peer reads: room again before WriteTimeout
		if err := <-res; err != nil {
			t.Fatalf("Send after the peer read: %v", err)
		}
		waitFor(t, "both frames", func() bool { return opcodes(f.frames(t)) == "B B" })
	})
}

// TestOrderAndNothingAfterClose: frames leave in the order of the calls
// from many goroutines, pongs go between them, and nothing follows the
// close frame.
func TestOrderAndNothingAfterClose(t *testing.T) {
	s := newTestServer(t, quiet())
	f := newSocketFake(64) // the socket takes a little at a time: the flusher works
	c := newTestConn(s, f)
	go func() {
		for {
			time.Sleep(100 * time.Microsecond)
			f.drain(64)
			if f.isClosed() {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				c.SendText(fmt.Sprintf("%d-%02d", g, i))
			}
		})
	}
	c.Feed(clientFrame(ws.OpPing, []byte("p")))
	wg.Wait()
	c.Feed(clientFrame(ws.OpClose, nil))
	if err := c.SendText("late"); err == nil {
		t.Fatal("Send after the close frame was queued succeeded")
	}
	waitFor(t, "the socket to close", f.isClosed)
	fs := f.frames(t)
	next := map[byte]int{}
	for i, fr := range fs {
		switch fr.Header.OpCode {
		case ws.OpText:
			g, n := fr.Payload[0], 0
			fmt.Sscanf(string(fr.Payload[2:]), "%d", &n)
			if n != next[g] {
				t.Fatalf("sender %c: message %d after %d", g, n, next[g]-1)
			}
			next[g]++
		case ws.OpClose:
			if i != len(fs)-1 {
				t.Fatalf("%d frames after the close frame", len(fs)-1-i)
			}
		}
	}
	if len(fs) != 4*50+2 {
		t.Fatalf("%d frames, want 200 messages, a pong and the close", len(fs))
	}
}

// TestPauseIsNotAFlood: a runtime that stops reading (ReadLoop) is never
// cut for flooding, even while its peer reads nothing: what it does not
// read stays in the kernel. Only input a runtime buffers itself counts.
func TestPauseIsNotAFlood(t *testing.T) {
	o := quiet()
	o.SendQueueBytes = 1000
	o.WriteTimeout = 5 * time.Second
	s := newTestServer(t, o)
	f := newSocketFake(0) // the peer reads nothing
	c := newTestConn(s, f)
	defer c.Gone(errTest)
	c.SendBinary(make([]byte, 900))    // queued: the socket takes nothing
	go c.SendBinary(make([]byte, 900)) // queued: the socket takes nothing
	waitFor(t, "a Send waiting for the peer", func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.w.cold != nil && c.w.cold.roomWaiters > 0
	})
	big := clientFrame(ws.OpBinary, make([]byte, 3<<20)) // more than InboxBytes while the peer reads nothing
	used := 0
	for used < len(big) {
		n, paused := c.Feed(big[used:min(used+ReadBufferSize, len(big))])
		used += n
		if paused {
			break
		}
	}
	if c.state != stOpen {
		t.Fatalf("state %v after a pause with a read buffer's worth unparsed; want open", c.state)
	}
	c.Unparsed(2 << 20) // an event loop holding 2 MiB more, a Send waiting a moment: a peer that reads late
	if c.state != stOpen {
		t.Fatalf("state %v with 2 MiB buffered while a Send waits a moment: a peer reading behind is not a flood", c.state)
	}
	c.wmu.Lock()
	c.w.cold.waitSince = c.w.cold.waitSince.Add(-notReadingAfter) // the Send has waited that long: the peer does not read
	c.wmu.Unlock()
	c.Unparsed(2 << 20)
	if c.state < stClosing {
		t.Fatal("2 MiB buffered by the runtime while the peer reads nothing: not cut")
	}
}

// An idle event-style connection is mostly its Conn: the struct stays in
// the allocator's 384-byte size class (the next one is 416). What a
// connection needs only once it ends is behind one pointer (endState);
// its atomic booleans share one word (flags).
func TestConnFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 384 {
		t.Fatalf("Conn is %d bytes: over 384, every connection pays the 416-byte size class or more", n)
	}
}

// Messages received before the close are handed out after it, however
// many wait: taking one while others wait must not wake anyone through the
// closed wake-up channel (it panicked with "send on closed channel").
func TestPendingMessagesAfterClose(t *testing.T) {
	s := newTestServer(t, api.Options{})
	c := newTestConn(s, &fakeTransport{})
	c.Feed(append(append(clientFrame(ws.OpText, []byte("a")), clientFrame(ws.OpText, []byte("b"))...), clientFrame(ws.OpText, []byte("c"))...))
	c.closeWith(api.StatusGoingAway, "")
	for _, want := range []string{"a", "b", "c"} {
		m, err := c.Receive()
		if err != nil || m.String() != want {
			t.Fatalf("got %q, %v; want %q", m.String(), err, want)
		}
	}
	if _, err := c.Receive(); err == nil {
		t.Fatal("a fourth message after the close")
	}
}

// Input after a protocol error is discarded: the error is logged and
// counted once however much more the peer sends (it was counted again for
// every later read).
func TestProtocolErrorCountedOnce(t *testing.T) {
	var mu sync.Mutex
	counts := map[string]int{}
	s := newTestServer(t, api.Options{ReadLimit: 1000, Observer: &api.Observer{Refused: func(r string) {
		mu.Lock()
		counts[r]++
		mu.Unlock()
	}}})
	c := newTestConn(s, &fakeTransport{})
	frame := clientFrame(ws.OpBinary, make([]byte, 1001))
	c.Feed(frame[:10]) // the header: too big
	c.Feed(frame[10:]) // the payload, read later
	c.Feed(clientFrame(ws.OpText, []byte("more")))
	mu.Lock()
	defer mu.Unlock()
	if counts[api.ReasonTooBig] != 1 {
		t.Fatalf("Refused(too_big) called %d times, want 1", counts[api.ReasonTooBig])
	}
}

// A held pong to a ping without payload survives the writer dropping its
// cold state (the flusher's spare buffer goes back, a waiting Send is
// woken) and goes out once the peer reads: the pong's payload is empty,
// and its being held is what keeps the cold state.
func TestHeldEmptyPongGoesOut(t *testing.T) {
	o := quiet()
	o.SendQueueBytes = 1000
	o.WriteTimeout = 5 * time.Second
	s := newTestServer(t, o)
	f := newSocketFake(0) // the peer reads nothing yet
	c := newTestConn(s, f)
	defer c.Gone(errTest)
	c.SendBinary(make([]byte, 996)) // a 1,000-byte frame, queued: the socket takes nothing, the queue is at its budget
	c.Feed(clientFrame(ws.OpPing, nil))
	if !c.flags.has(pongHeld) {
		t.Fatal("the pong was not held: the queue was not over its budget")
	}
	f.drain(1 << 20) // the peer reads everything
	waitFor(t, "the pong", func() bool {
		for _, fr := range f.frames(t) {
			if fr.Header.OpCode == ws.OpPong {
				return true
			}
		}
		return false
	})
}

// The writer's cold state is not dropped while a pong is held, even one
// without payload: the flusher taking its spare buffer in between left
// takePongLocked without it (a nil dereference).
func TestHeldEmptyPongKeepsTheColdState(t *testing.T) {
	o := quiet()
	o.SendQueueBytes = 1000
	s := newTestServer(t, o)
	f := newSocketFake(0)
	c := newTestConn(s, f)
	defer c.Gone(errTest)
	c.wmu.Lock()
	c.w.queued = 1000 // the queue at its budget, as a peer that stopped reading leaves it
	c.wmu.Unlock()
	c.sendPong(nil)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.w.hasPong {
		t.Fatal("the pong was not held")
	}
	c.takeSpareLocked() // what the flusher does before each write
	c.w.queued = 0      // the peer read everything
	c.takePongLocked()
	if c.w.hasPong || len(c.w.queue) == 0 {
		t.Fatal("the held pong was not queued")
	}
}
