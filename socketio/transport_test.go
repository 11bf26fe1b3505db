package socketio_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/socketio"
)

// TestOverlappingPostsEndTheSession: a client may have one POST at a time
// (Engine.IO v4: "the server MUST return an HTTP 400 error status and
// close the session"); taking both ran two handlers of one socket at once.
func TestOverlappingPostsEndTheSession(t *testing.T) {
	var inside, most atomic.Int32
	reasons := make(chan string, 1)
	_, addr := start(t, "stdhttp", socketio.Options{}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			so.OnDisconnect(func(r string) { reasons <- r })
			so.On("slow", func(e *socketio.Event) {
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(300 * time.Millisecond)
				inside.Add(-1)
			})
		})
	})
	p := handshake(t, addr)
	p.post("40")
	p.poll()
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(50 * time.Millisecond) // the first is being served
			}
			codes[i], _ = p.post(`42["slow"]`)
		}()
	}
	wg.Wait()
	if most.Load() > 1 {
		t.Errorf("two handlers of one socket ran at once; the POSTs got %v", codes)
	}
	if codes[0] != 200 || codes[1] != 400 {
		t.Errorf("the POSTs got %v, want 200 and 400", codes)
	}
	select {
	case r := <-reasons:
		if r != "transport error" {
			t.Errorf("disconnect reason %q, want transport error", r)
		}
	case <-time.After(2 * time.Second):
		t.Error("the session went on after overlapping POSTs")
	}
}

// TestRequestsLeftFromPollingDoNotEndAnUpgradedSession: a GET or POST
// with the sid of a session that went over to WebSocket gets 400 and the
// session goes on, as on the Node.js server (the official test suite's
// "ignores HTTP requests with same sid after upgrade"); it ended the
// session, and python-socketio's client with it.
func TestRequestsLeftFromPollingDoNotEndAnUpgradedSession(t *testing.T) {
	reasons := make(chan string, 1)
	_, addr := start(t, "stdhttp", socketio.Options{}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			so.OnDisconnect(func(r string) { reasons <- r })
			so.On("echo", func(e *socketio.Event) { so.Emit("echo", e.Values()...) })
		})
	})
	p := handshake(t, addr)
	p.post("40")
	p.poll()
	c := dialWS(t, addr, "&sid="+p.sid)
	c.WriteMessage(websocket.TextMessage, []byte("2probe"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.ReadMessage() // 3probe
	c.WriteMessage(websocket.TextMessage, []byte("5"))
	time.Sleep(50 * time.Millisecond)
	if got := p.poll(); !strings.HasPrefix(got, "400 ") {
		t.Errorf("a GET after the upgrade: %q, want 400", got)
	}
	if code, _ := p.post(`42["echo","by polling"]`); code != http.StatusBadRequest {
		t.Errorf("a POST after the upgrade: %d, want 400", code)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`42["echo","x"]`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("the upgraded session: %v", err)
		}
		if string(b) == `42["echo","x"]` {
			break
		}
		if string(b) != "2" { // a ping may come first
			t.Fatalf("the upgraded session sent %q", b)
		}
	}
	select {
	case r := <-reasons:
		t.Errorf("the upgraded session ended: %q", r)
	default:
	}
}

// TestNilBytesAreAnEmptyAttachment: a nil []byte (what bytes.Buffer{}.Bytes
// returns) emitted goes out as an empty binary attachment on both
// transports; it went out as an empty text message (WebSocket) or an
// empty packet (polling), and socket.io-client disconnected.
func TestNilBytesAreAnEmptyAttachment(t *testing.T) {
	_, addr := start(t, "stdhttp", socketio.Options{}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			so.On("go", func(*socketio.Event) {
				var none []byte
				so.Emit("data", none, map[string]any{"nested": none})
			})
		})
	})
	c := dialWS(t, addr, "")
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte("40"))
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte(`42["go"]`))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != `452-["data",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]` {
		t.Fatalf("header: %q %v", b, err)
	}
	for i := range 2 {
		typ, b, err := c.ReadMessage()
		if err != nil || typ != websocket.BinaryMessage || len(b) != 0 {
			t.Fatalf("attachment %d: type %d %q %v, want an empty binary message", i, typ, b, err)
		}
	}
	p := handshake(t, addr)
	p.post("40")
	p.poll()
	p.post(`42["go"]`)
	if got, want := p.poll(), "452-[\"data\",{\"_placeholder\":true,\"num\":0},{\"nested\":{\"_placeholder\":true,\"num\":1}}]\x1eb\x1eb"; got != want {
		t.Fatalf("polling: %q, want %q", got, want)
	}
}

// TestUpgradeSocketsEndWithTheirSession: a WebSocket opened with a
// session's sid is closed once it is not going to upgrade — when the
// session ends, after UpgradeTimeout, or at once when the session is
// already on WebSocket — as the Node.js server does; such a socket stayed
// open for as long as its client kept it, after the session too.
func TestUpgradeSocketsEndWithTheirSession(t *testing.T) {
	closedWithin := func(t *testing.T, c *websocket.Conn, d time.Duration) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(d))
		for {
			_, _, err := c.ReadMessage()
			if err == nil {
				continue
			}
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatalf("still open after %v", d)
			}
			return
		}
	}
	t.Run("session_ends", func(t *testing.T) {
		_, addr := start(t, "stdhttp", socketio.Options{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond}, nil)
		p := handshake(t, addr)
		c := dialWS(t, addr, "&sid="+p.sid)
		time.Sleep(400 * time.Millisecond) // no pong: the session ends
		if got := p.poll(); !strings.Contains(got, "Session ID unknown") {
			t.Fatalf("the session is still there: %q", got)
		}
		closedWithin(t, c, time.Second)
	})
	t.Run("upgrade_timeout", func(t *testing.T) {
		_, addr := start(t, "stdhttp", socketio.Options{UpgradeTimeout: 200 * time.Millisecond}, nil)
		p := handshake(t, addr)
		c := dialWS(t, addr, "&sid="+p.sid)
		c.WriteMessage(websocket.TextMessage, []byte("2probe"))
		closedWithin(t, c, 2*time.Second)
		p.post("40") // polling goes on
		if got := p.poll(); !strings.HasPrefix(got, "40{") {
			t.Fatalf("polling after the given-up upgrade: %q", got)
		}
	})
	t.Run("second_websocket", func(t *testing.T) {
		_, addr := start(t, "stdhttp", socketio.Options{}, nil)
		p := handshake(t, addr)
		c := dialWS(t, addr, "&sid="+p.sid)
		c.WriteMessage(websocket.TextMessage, []byte("2probe"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.ReadMessage()
		c.WriteMessage(websocket.TextMessage, []byte("5"))
		time.Sleep(50 * time.Millisecond)
		closedWithin(t, dialWS(t, addr, "&sid="+p.sid), time.Second)
	})
}

// TestSessionWithoutANamespaceEnds: a session that connects no namespace
// within ConnectTimeout is closed (as the Node.js server's connectTimeout);
// one that answered pings lived for ever.
func TestSessionWithoutANamespaceEnds(t *testing.T) {
	_, addr := start(t, "stdhttp", socketio.Options{ConnectTimeout: 300 * time.Millisecond, PingInterval: 50 * time.Millisecond}, nil)
	c := dialWS(t, addr, "")
	deadline := time.Now().Add(3 * time.Second)
	for {
		c.SetReadDeadline(deadline)
		_, b, err := c.ReadMessage()
		if err != nil {
			break // closed
		}
		if string(b) == "2" {
			c.WriteMessage(websocket.TextMessage, []byte("3"))
		}
	}
	if time.Now().After(deadline) {
		t.Fatal("a session with no namespace is still open after 3 s, ConnectTimeout 300 ms")
	}
}

// TestBinaryAckReachesEmitWithAck: a client that answers EmitWithAck with
// a Buffer (BINARY_ACK) is heard with its bytes; EmitWithAck returned the
// placeholder, the bytes lost.
func TestBinaryAckReachesEmitWithAck(t *testing.T) {
	got := make(chan *socketio.Event, 1)
	_, addr := start(t, "stdhttp", socketio.Options{}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if answer, err := so.EmitWithAck(ctx, "q"); err == nil {
					got <- answer
				}
			}()
		})
	})
	c := dialWS(t, addr, "")
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte("40"))
	c.ReadMessage() // 40{sid}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != `420["q"]` {
		t.Fatalf("the question: %q %v", b, err)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`461-0["x",{"_placeholder":true,"num":0}]`))
	c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	select {
	case answer := <-got:
		vs := answer.Values()
		if len(vs) != 2 || string(answer.Args[0]) != `"x"` || !bytes.Equal(asBytes(vs[1]), []byte{1, 2, 3}) {
			t.Fatalf("EmitWithAck's answer: %#v (args %s)", vs, answer.Args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
}

func asBytes(v any) []byte { b, _ := v.([]byte); return b }

// TestToIDStaysInItsNamespace: a namespace's emit to a socket id reaches
// that socket only if it is of the namespace, as on the Node.js server
// (an adapter per namespace); Of("/").ToID(the id of an "/admin" socket)
// delivered the "/" event to the client.
func TestToIDStaysInItsNamespace(t *testing.T) {
	adminID := make(chan string, 1)
	sio, addr := start(t, "stdhttp", socketio.Options{}, func(s *socketio.Server) {
		s.Of("/admin").OnConnection(func(so *socketio.Socket) { adminID <- so.ID() })
	})
	c := dialWS(t, addr, "")
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte("40"))
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte("40/admin,"))
	c.ReadMessage()
	id := <-adminID
	if err := sio.Of("/").To().ToID(id).Emit("leak", 1); err != nil {
		t.Fatal(err)
	}
	if err := sio.Of("/admin").To().ToID(id).Emit("mine", 2); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != `42/admin,["mine",2]` {
		t.Fatalf("the client got %q (%v), want only /admin's event", b, err)
	}
}

// TestMessageOverMaxPayloadClosesWith1009: a WebSocket message over
// MaxHTTPBufferSize ends the session with "transport error", its
// WebSocket with 1009 (message too big), as Node.js's ws closes a
// message over maxPayload; it closed with 1000, as if all were well.
func TestMessageOverMaxPayloadClosesWith1009(t *testing.T) {
	reasons := make(chan string, 1)
	_, addr := start(t, "stdhttp", socketio.Options{MaxHTTPBufferSize: 1000}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) { so.OnDisconnect(func(r string) { reasons <- r }) })
	})
	c := dialWS(t, addr, "")
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte("40"))
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte(`42["x","`+strings.Repeat("y", 1000)+`"]`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("%v, want a close with 1009", err)
	}
	if r := <-reasons; r != "transport error" {
		t.Fatalf("disconnect reason %q", r)
	}
}

// TestWebSocketHandshakeErrorsAre400: a WebSocket handshake that cannot
// become a session gets 400 and the Engine.IO error, as the polling
// handshake does and as on the Node.js server; it got 101, then a close
// with 1008.
func TestWebSocketHandshakeErrorsAre400(t *testing.T) {
	_, addr := start(t, "stdhttp", socketio.Options{}, nil)
	for _, tc := range []struct{ query, body string }{
		{"EIO=3&transport=websocket", `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO=4&transport=polling", `{"code":0,"message":"Transport unknown"}`},
		{"EIO=4&transport=websocket&sid=nope", `{"code":1,"message":"Session ID unknown"}`},
	} {
		_, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/socket.io/?"+tc.query, nil)
		if err == nil || resp == nil {
			t.Fatalf("%s: upgraded", tc.query)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(b)) != tc.body {
			t.Errorf("%s: %d %s, want 400 %s", tc.query, resp.StatusCode, b, tc.body)
		}
	}
}

// TestQueuedPongsCountTowardMaxBufferedBytes: a polling client that posts
// pings and never polls fills its queue with pongs, each counted with
// what it costs the server, so that MaxBufferedBytes ends the session;
// counted at one byte each, a client held about 200 MB of pongs per
// session within a "1 MiB" bound.
func TestQueuedPongsCountTowardMaxBufferedBytes(t *testing.T) {
	reasons := make(chan string, 1)
	_, addr := start(t, "stdhttp", socketio.Options{MaxBufferedBytes: 64 << 10}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) { so.OnDisconnect(func(r string) { reasons <- r }) })
	})
	p := handshake(t, addr)
	p.post("40")
	p.poll()
	pings := strings.Repeat("2\x1e", 10_000) + "2" // 10,001 pongs of one byte: far under 64 KiB as bytes
	p.post(pings)
	select {
	case r := <-reasons:
		if r != "transport error" {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("10,001 queued pongs did not pass a MaxBufferedBytes of 64 KiB")
	}
}
