package conn

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// tcpConn opens a real loopback TCP connection and attaches its server
// side to a connection of s, with handler h running as a runtime runs it.
func tcpConn(t *testing.T, s *Server, prefix []byte, h api.Handler) (client net.Conn, c *Conn) {
	return tcpConnTuned(t, s, prefix, nil, h)
}

// countingTransport counts the writes of the transport it wraps.
type countingTransport struct {
	Transport
	writes atomic.Int32
}

func (ct *countingTransport) TryWrite(a, b []byte) (int, error) {
	ct.writes.Add(1)
	return ct.Transport.(TryWriter).TryWrite(a, b)
}

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	return client, server
}

// serverConn makes a connection of s on transport tr, as an upgrade does;
// dfl is the deflate negotiated, or nil.
func serverConn(s *Server, tr Transport, dfl *deflater) *Conn {
	s.admit()
	return s.newConnAdmitted(tr, httptest.NewRequest(http.MethodGet, "/t", nil), 0, netip.MustParseAddrPort("127.0.0.1:1"), dfl, nil)
}

// wrapTransport, when set, wraps the transport of the next tcpConnTuned.
var wrapTransport func(Transport) Transport

// tcpConnTuned is tcpConn with tune applied to the server's socket first.
func tcpConnTuned(t *testing.T, s *Server, prefix []byte, tune func(*net.TCPConn), h api.Handler) (client net.Conn, c *Conn) {
	t.Helper()
	client, server := tcpPair(t)
	if tune != nil {
		tune(server.(*net.TCPConn))
	}
	tr := NetTransport(server, min(s.opts.WriteTimeout, 10*time.Second))
	if wrapTransport != nil {
		tr = wrapTransport(tr)
	}
	c = serverConn(s, tr, nil)
	c.Attach(server, prefix)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		c.Run(h)
	}()
	// The connection and its handler end with the test: one left running
	// races with the next test's hooks.
	t.Cleanup(func() {
		client.Close()
		server.Close()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Error("the handler still runs 5 s after its socket closed")
		}
	})
	return client, c
}

// A handler that reads its own socket and a helper that read while it was
// away hand the read role back and forth without losing a wake-up: a
// small inbox, a handler that starts late, 300 messages in one burst, every
// one echoed in order. Run many times: the hand-over races.
func TestDirectReadHandOver(t *testing.T) {
	for run := range 50 {
		s := newTestServer(t, api.Options{InboxSize: 2})
		release := make(chan struct{})
		// Half the runs start with frames read past the request, as a
		// runtime hands them over (a helper reads first then).
		var prefix []byte
		first := 0
		if run%2 == 1 {
			for ; first < 10; first++ {
				prefix = append(prefix, clientFrame(ws.OpText, []byte(strconv.Itoa(first)))...)
			}
		}
		client, c := tcpConn(t, s, prefix, func(ws api.Conn) {
			<-release
			handlers.Echo(ws)
		})
		const n = 300
		go func() {
			for i := first; i < n; i++ {
				client.Write(clientFrame(ws.OpText, []byte(strconv.Itoa(i))))
			}
		}()
		time.Sleep(time.Duration(run%5) * 15 * time.Millisecond)
		close(release)
		for i := range n {
			client.SetReadDeadline(time.Now().Add(3 * time.Second))
			p, err := wsutil.ReadServerText(client)
			if err != nil || string(p) != strconv.Itoa(i) {
				c.mu.Lock()
				state := fmt.Sprintf("paused=%v inN=%d waiting=%d inbox=%d state=%d yield=%v helping=%v space=%d n=%d",
					c.flags.has(paused), c.inN.Load(), c.waiting.Load(), c.inbox.len(), c.state, c.rd.yield.Load(), c.rd.helping.Load(), len(c.rd.room()), c.rd.n)
				c.mu.Unlock()
				t.Fatalf("run %d, message %d: %q, %v (%s)", run, i, p, err, state)
			}
		}
		client.Close()
	}
}

// A close that begins while a receiver is taking the read role over still
// gets the peer's answer read: a helper started for the close does not
// step aside for the receiver's hand-over request (it did, and the
// connection waited for CloseTimeout).
func TestCloseDuringHandOverIsRead(t *testing.T) {
	s := newTestServer(t, api.Options{CloseTimeout: 5 * time.Second})
	block := make(chan struct{})
	defer close(block)
	client, c := tcpConn(t, s, nil, func(api.Conn) { <-block }) // away: a helper reads
	time.Sleep(3 * awayGrace)
	if !c.rd.helping.Load() {
		t.Fatal("no helper reads for a handler that is away")
	}
	// What a receiver does when a helper holds the role, without taking
	// the role afterwards (its Receive ended: the close came first).
	c.rd.yield.Store(true)
	c.rd.deadline(aLongTimeAgo)
	for c.rd.helping.Load() {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	c.closeWith(api.StatusNormalClosure, "")
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := wsutil.ReadServerData(client); err == nil {
		t.Fatal("a message before the close frame")
	}
	client.Write(clientFrame(ws.OpClose, []byte{0x03, 0xe8}))
	select {
	case <-c.endedCh():
		if d := time.Since(start); d > time.Second {
			t.Fatalf("the close took %v: the peer's answer was not read", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the peer's close answer was never read")
	}
}

// A handler reading its own socket that has a message's bytes in hand
// while Feed pauses (a pong waits for room in a full send queue) does not
// sit on them: a helper takes over and the message arrives once the peer
// reads again. Before, the bytes waited for more input from the peer.
func TestPausedReceiverHandsOver(t *testing.T) {
	s := newTestServer(t, api.Options{SendQueueBytes: 8 << 10, WriteTimeout: 10 * time.Second})
	small := func(tc *net.TCPConn) { tc.SetWriteBuffer(4096) }
	got := make(chan string, 1)
	fill := make(chan struct{})
	client, c := tcpConnTuned(t, s, nil, small, func(w api.Conn) {
		go func() { // fill the send queue while the peer does not read
			<-fill // once the peer's receive buffer is small: bytes the kernel took before never come back as backlog
			for range 64 {
				if w.Send(api.BinaryMessage(make([]byte, 4092))) != nil { // 4096-byte frames: two fill the budget exactly
					return
				}
			}
		}()
		m, err := w.Receive()
		if err == nil {
			got <- m.String()
		}
		w.Receive()
	})
	client.(*net.TCPConn).SetReadBuffer(4096)
	close(fill)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.wmu.Lock()
		full := c.backlogLocked() >= c.srv.opts.SendQueueBytes
		c.wmu.Unlock()
		if full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the send queue never filled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// One segment: the ping's pong cannot be queued, so Feed pauses
	// with "A" in hand.
	client.Write(append(clientFrame(ws.OpPing, []byte("q")), clientFrame(ws.OpText, []byte("A"))...))
	for !c.flags.has(pongHeld) {
		if time.Now().After(deadline) {
			t.Fatal("the pong was not held: the send queue was not full")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the handler has gone back to its read, or handed over
	go io.Copy(io.Discard, client)    // the peer reads again
	select {
	case m := <-got:
		if m != "A" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		c.wmu.Lock()
		state := fmt.Sprintf("pongHeld=%v hasPong=%v backlog=%d paused=%v helping=%v inN=%d n=%d waiting=%d state=%d dead=%v closeErr=%v",
			c.flags.has(pongHeld), c.w.hasPong, c.backlogLocked(), c.flags.has(paused), c.rd.helping.Load(), c.inN.Load(), c.rd.n, c.waiting.Load(), c.state, c.w.dead, c.closeErrLocked())
		c.wmu.Unlock()
		t.Fatalf("the message behind the held pong never reached the handler (%s)", state)
	}
}

// A blocking handler that waits for a message keeps its upgrade request
// packed, as an event-style connection does once its handler returned
// (about 0.6 KiB less per idle connection); Request rebuilds it with the
// same values.
func TestWaitingBlockingHandlerKeepsItsRequestPacked(t *testing.T) {
	s := newTestServer(t, api.Options{})
	got := make(chan string, 1)
	client, c := tcpConn(t, s, nil, func(w api.Conn) {
		if _, err := w.Receive(); err != nil {
			return
		}
		r := w.Request()
		got <- r.Method + " " + r.URL.Path
		w.Receive()
	})
	deadline := time.Now().Add(2 * time.Second)
	for c.req.Load() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the request of a handler waiting for its first message was not packed")
		}
		time.Sleep(time.Millisecond)
	}
	if c.kept.Load() == nil {
		t.Fatal("packed into nothing")
	}
	client.Write(clientFrame(ws.OpText, []byte("x")))
	select {
	case v := <-got:
		if v != "GET /t" {
			t.Fatalf("rebuilt request: %q", v)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no message")
	}
}

// TestDirectReadAllocatesOnlyTheMessage: a blocking handler that reads its
// socket itself, one read and one write a message, allocates the message's
// data and its place in the inbox, nothing per read or write (RawConn's
// callbacks and what they return were made for each call: 3 allocations a
// read, 2 a write). Under the race detector, whose sync.Pool drops what
// it is given back (the read buffers, the write ops), it counts in a run
// of its own without it.
func TestDirectReadAllocatesOnlyTheMessage(t *testing.T) {
	if raceEnabled {
		runWithoutRace(t)
		return
	}
	n := echoAllocs(t, []byte("sixteen bytes..."), false)
	t.Logf("%.1f allocations a message", n)
	if n > 2 {
		t.Fatalf("%.1f allocations a message read from the socket, want 2 (its data, its place in the inbox)", n)
	}
}

// echoAllocs is the allocations a blocking echo handler makes per binary
// message of payload read from a real socket (Receive, Send, and Release
// if release), over 200 messages.
func echoAllocs(t *testing.T, payload []byte, release bool) float64 {
	s := newTestServer(t, quiet())
	allocs := make(chan float64, 1)
	client, _ := tcpConn(t, s, nil, func(c api.Conn) {
		allocs <- testing.AllocsPerRun(200, func() {
			m, err := c.Receive()
			if err != nil {
				return
			}
			c.Send(m)
			if release {
				m.Release()
			}
		})
	})
	frame := clientFrame(ws.OpBinary, payload)
	echo := make([]byte, len(wire.AppendFrame(nil, ws.OpBinary, payload)))
	for i := 0; i < 201; i++ {
		if _, err := client.Write(frame); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, echo); err != nil {
			t.Fatal(err)
		}
	}
	return <-allocs
}

// echoConn serves an echo handler on a counted transport, in blocking
// style (handlers.Echo) or event style (handlers.EchoEvent).
func echoConn(t *testing.T, event bool) (net.Conn, *countingTransport, *Conn) {
	h := handlers.Echo
	if event {
		h = handlers.EchoEvent
	}
	return countedConn(t, h)
}

// countedConn serves h on a counted transport.
func countedConn(t *testing.T, h api.Handler) (net.Conn, *countingTransport, *Conn) {
	s := newTestServer(t, quiet())
	var ct *countingTransport
	wrapTransport = func(tr Transport) Transport { ct = &countingTransport{Transport: tr}; return ct }
	defer func() { wrapTransport = nil }()
	client, conn := tcpConn(t, s, nil, h)
	return client, ct, conn
}

// readEchoes reads n echoes of 16-byte messages.
func readEchoes(t *testing.T, client net.Conn, n int) {
	t.Helper()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range n {
		if _, err := wsutil.ReadServerBinary(client); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPipelinedAnswersGoOutTogether: a handler, blocking or event style,
// that answers messages which arrived together writes its answers
// together, in one write, not one each (as the loop runtime does with a
// batch).
func TestPipelinedAnswersGoOutTogether(t *testing.T) {
	for _, event := range []bool{false, true} {
		t.Run(map[bool]string{false: "blocking", true: "event"}[event], func(t *testing.T) {
			client, ct, _ := echoConn(t, event)
			batch := bytes.Repeat(clientFrame(ws.OpBinary, []byte("sixteen bytes...")), 4)
			const batches = 20
			for range batches {
				if _, err := client.Write(batch); err != nil {
					t.Fatal(err)
				}
				readEchoes(t, client, 4)
			}
			// A read may split a batch now and then: one write a batch, with room.
			if n := ct.writes.Load(); n > batches*3/2 {
				t.Fatalf("%d writes for %d batches of 4 pipelined messages, want about one a batch", n, batches)
			}
		})
	}
}

// TestCorkedAnswerWaitsLittle: an answer held for the next ones goes out
// within corkGrace when the handler is slow to send them.
func TestCorkedAnswerWaitsLittle(t *testing.T) {
	client, _, _ := countedConn(t, func(c api.Conn) {
		for {
			m, err := c.Receive()
			if err != nil || c.Send(m) != nil {
				return
			}
			time.Sleep(300 * time.Millisecond) // slow to come back for the next
		}
	})
	batch := bytes.Repeat(clientFrame(ws.OpBinary, []byte("sixteen bytes...")), 2)
	start := time.Now()
	if _, err := client.Write(batch); err != nil {
		t.Fatal(err)
	}
	readEchoes(t, client, 1)
	if d := time.Since(start); d > 150*time.Millisecond { // corkGrace is 1 ms; the handler is away 300 ms
		t.Fatalf("the first answer took %v: it waited for the slow handler", d)
	}
	readEchoes(t, client, 1)
}

// TestCorkedAnswerOutAfterStyleChange: a handler that answers the first of
// two pipelined messages and then registers OnMessage (whose callback does
// not answer) or OnClose, and waits, still gets its answer out within
// corkGrace (the helper it starts does not stop the cork's timer).
func TestCorkedAnswerOutAfterStyleChange(t *testing.T) {
	for _, style := range []string{"OnMessage", "OnClose"} {
		t.Run(style, func(t *testing.T) {
			s := newTestServer(t, quiet())
			client, _ := tcpConn(t, s, nil, func(c api.Conn) {
				m, err := c.Receive()
				if err != nil {
					return
				}
				c.Send(m)
				if style == "OnMessage" {
					c.OnMessage(func(api.Message) {})
				} else {
					c.OnClose(func(*api.CloseError) {})
				}
				select {
				case <-time.After(time.Second):
				case <-c.Context().Done():
				}
			})
			batch := bytes.Repeat(clientFrame(ws.OpBinary, []byte("sixteen bytes...")), 2)
			start := time.Now()
			if _, err := client.Write(batch); err != nil {
				t.Fatal(err)
			}
			readEchoes(t, client, 1)
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Fatalf("the first answer took %v", d)
			}
		})
	}
}

// TestHelperStartsAfterAwayGraceAfterABatch: once a pipelined batch is
// answered (its last answer writes the corked ones), a handler that works
// on for 3 ms has no helper reading for it yet: the helper waits for
// awayGrace (20 ms), not for the cork's 1 ms.
func TestHelperStartsAfterAwayGraceAfterABatch(t *testing.T) {
	s := newTestServer(t, quiet())
	helping := make(chan bool, 1)
	client, _ := tcpConn(t, s, nil, func(c api.Conn) {
		for i := 0; ; i++ {
			m, err := c.Receive()
			if err != nil {
				return
			}
			c.Send(m)
			if i == 1 {
				time.Sleep(3 * time.Millisecond)
				helping <- c.(*Conn).rd.helping.Load()
			}
		}
	})
	batch := bytes.Repeat(clientFrame(ws.OpBinary, []byte("sixteen bytes...")), 2)
	if _, err := client.Write(batch); err != nil {
		t.Fatal(err)
	}
	readEchoes(t, client, 2)
	if <-helping {
		t.Fatalf("a helper reads 3 ms after the batch's last answer (awayGrace is %v)", awayGrace)
	}
}

// TestPipelinedBurstKeepsNoBuffer: once the answers to a pipelined burst
// are out, the connection keeps no buffer for them (the corked queue's
// storage went back to a pool; it stayed as the writer's spare, 4 KiB and
// more a connection, for the connection's life).
func TestPipelinedBurstKeepsNoBuffer(t *testing.T) {
	client, _, c := echoConn(t, false)
	batch := bytes.Repeat(clientFrame(ws.OpBinary, bytes.Repeat([]byte("x"), 1000)), 4)
	for range 5 {
		if _, err := client.Write(batch); err != nil {
			t.Fatal(err)
		}
		readEchoes(t, client, 4)
	}
	c.wmu.Lock()
	kept := cap(c.w.queue)
	if x := c.w.cold; x != nil {
		kept += cap(x.spare)
	}
	c.wmu.Unlock()
	if kept != 0 {
		t.Fatalf("the connection keeps %d bytes of queue storage after its answers went out", kept)
	}
}

// runWithoutRace runs the calling test in a test binary built without the
// race detector, whose sync.Pool drops what it is given back: allocation
// counts mean something only there.
func runWithoutRace(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "test", "-race=false", "-count=1", "-run", "^"+t.Name()+"$", "-v", ".").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("without the race detector: %v\n%s", err, out)
	}
}

// TestQueuedSendAllocatesLittle: a Send that finds another goroutine
// writing queues its frame in pooled storage: one allocation (the pool's
// wrapper when the queue's storage goes back), where building the queue
// from nothing each time made three.
func TestQueuedSendAllocatesLittle(t *testing.T) {
	if raceEnabled {
		runWithoutRace(t)
		return
	}
	s := newTestServer(t, quiet())
	client, c := tcpConn(t, s, nil, func(c api.Conn) { c.Receive() })
	go io.Copy(io.Discard, client)
	p := []byte("sixteen bytes...")
	n := testing.AllocsPerRun(200, func() {
		c.wmu.Lock()
		c.w.active = true // another goroutine writes
		c.wmu.Unlock()
		c.SendBinary(p)
		c.drain() // it writes what was queued meanwhile
	})
	t.Logf("%.1f allocations a queued Send", n)
	if n > 1 {
		t.Fatalf("%.1f allocations a queued Send, want at most 1", n)
	}
}

// TestCorkedFramesKeepTheirOrder: an echo handler (event style and
// blocking) answers batches of pipelined messages with a ping among them,
// while another goroutine sends a numbered stream: every frame arrives
// whole, each sender's in its order (corked answers, direct writes, pongs
// and the queue of a Send that finds another writing all meet here).
func TestCorkedFramesKeepTheirOrder(t *testing.T) {
	for _, event := range []bool{true, false} {
		t.Run(map[bool]string{false: "blocking", true: "event"}[event], func(t *testing.T) {
			s := newTestServer(t, quiet())
			var wg sync.WaitGroup
			stop := make(chan struct{})
			client, _ := tcpConn(t, s, nil, func(c api.Conn) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if c.SendText(fmt.Sprintf("b%06d", i)) != nil {
							return
						}
						time.Sleep(50 * time.Microsecond)
					}
				}()
				if event {
					handlers.EchoEvent(c)
				} else {
					handlers.Echo(c)
				}
			})
			defer func() { close(stop); wg.Wait() }()
			br := bufio.NewReader(client)
			client.SetReadDeadline(time.Now().Add(20 * time.Second))
			lastB := -1
			for batch := 0; batch < 200; batch++ {
				var buf bytes.Buffer
				for i := 0; i < 6; i++ {
					p := bytes.Repeat([]byte{byte('a' + i)}, 100+batch*7%900)
					copy(p, fmt.Sprintf("e%04d-%d", batch, i))
					buf.Write(clientFrame(ws.OpBinary, p))
					if i == 3 {
						buf.Write(clientFrame(ws.OpPing, []byte("pp")))
					}
				}
				client.Write(buf.Bytes())
				got := 0
				for got < 6 {
					h, err := ws.ReadHeader(br)
					if err != nil {
						t.Fatal(err)
					}
					p := make([]byte, h.Length)
					if _, err := io.ReadFull(br, p); err != nil {
						t.Fatal(err)
					}
					switch h.OpCode {
					case ws.OpText:
						var n int
						fmt.Sscanf(string(p), "b%06d", &n)
						if n != lastB+1 {
							t.Fatalf("broadcast %d after %d", n, lastB)
						}
						lastB = n
					case ws.OpBinary:
						want := fmt.Sprintf("e%04d-%d", batch, got)
						if !bytes.HasPrefix(p, []byte(want)) || p[len(p)-1] != byte('a'+got) {
							t.Fatalf("echo %q..., want %q", p[:12], want)
						}
						got++
					case ws.OpPong:
					default:
						t.Fatalf("op %v", h.OpCode)
					}
				}
			}
		})
	}
}

// ReceiveContext with a context that is never done may read the socket
// itself, as Receive does, and it never returns an empty message: when
// Receive read the socket itself, it left a stale wake-up behind, and a
// ReceiveContext that took it was told to read the socket and returned
// an empty message and no error instead, with Conn.waiting one too high.
func TestReceiveKindsTakeTurns(t *testing.T) {
	s := newTestServer(t, api.Options{})
	const n = 12
	got := make(chan string, n)
	client, c := tcpConn(t, s, nil, func(ws api.Conn) {
		for i := range n {
			var m api.Message
			var err error
			switch i % 4 {
			case 0, 2:
				m, err = ws.ReceiveContext(context.Background())
			case 1:
				m, err = ws.Receive()
			default:
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				m, err = ws.ReceiveContext(ctx)
				cancel()
			}
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- string(m.Data)
		}
	})
	for i := range n {
		if _, err := client.Write(clientFrame(ws.OpText, []byte(strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != strconv.Itoa(i) {
				t.Fatalf("message %d: got %q (waiting=%d)", i, m, c.waiting.Load())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: the handler got nothing", i)
		}
		if i == n-1 {
			break
		}
		// The handler waits for the next message: one waiter, never two.
		w := c.waiting.Load()
		for deadline := time.Now().Add(3 * time.Second); w != 1 && w < 2 && time.Now().Before(deadline); w = c.waiting.Load() {
			time.Sleep(time.Millisecond)
		}
		if w != 1 {
			t.Fatalf("after message %d, waiting=%d while one receive waits", i, w)
		}
		time.Sleep(20 * time.Millisecond) // and has settled in its wait
		if w := c.waiting.Load(); w != 1 {
			t.Fatalf("after message %d, waiting=%d while one receive waits", i, w)
		}
	}
}
