package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	_ "github.com/wsmatrix/wsmatrix/runtime/fasthttp"
	_ "github.com/wsmatrix/wsmatrix/runtime/gnet"
	"github.com/wsmatrix/wsmatrix/runtime/runtimetest"
	_ "github.com/wsmatrix/wsmatrix/runtime/stdhttp"
	"github.com/wsmatrix/wsmatrix/socketio"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(runtimetest.ProcessWide(),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)...)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start serves a Socket.IO server made by setup on runtime rt.
func start(t *testing.T, rt string, o socketio.Options, setup func(*socketio.Server)) (*socketio.Server, string) {
	t.Helper()
	return startWith(t, rt, o, api.Options{}, setup)
}

// startWith is start with the runtime's options ro.
func startWith(t *testing.T, rt string, o socketio.Options, ro api.Options, setup func(*socketio.Server)) (*socketio.Server, string) {
	t.Helper()
	o.Logger, ro.Logger = quiet, quiet
	sio := socketio.New(o)
	if setup != nil {
		setup(sio)
	}
	r := api.NewRouter()
	sio.Mount(r, "/socket.io/")
	s, err := runtime.New(rt, r, ro)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sio.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		http.DefaultClient.CloseIdleConnections()
	})
	return sio, a.String()
}

// dialWS opens an Engine.IO WebSocket to addr (query is added to the
// URL: "&sid=..." for an upgrade), closed at the end of the test.
func dialWS(t *testing.T, addr, query string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// poller is a raw long-polling Engine.IO client.
type poller struct {
	t    *testing.T
	base string
	sid  string
}

func handshake(t *testing.T, addr string) *poller {
	t.Helper()
	p := &poller{t: t, base: "http://" + addr + "/socket.io/?EIO=4&transport=polling"}
	body := p.get("")
	if !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake: %q", body)
	}
	var open struct {
		SID      string   `json:"sid"`
		Upgrades []string `json:"upgrades"`
	}
	json.Unmarshal([]byte(body[1:]), &open)
	p.sid = open.SID
	return p
}

func (p *poller) get(sid string) string {
	p.t.Helper()
	u := p.base
	if sid != "" {
		u += "&sid=" + sid
	}
	resp, err := http.Get(u)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	return string(b)
}

func (p *poller) poll() string { return p.get(p.sid) }

func (p *poller) post(body string) (int, string) {
	p.t.Helper()
	resp, err := http.Post(p.base+"&sid="+p.sid, "text/plain", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var rts = []string{"stdhttp", "fasthttp", "gnet"}

// TestPollingProtocol: the handshake, connect, an event with an ack, a
// server emit, binary attachments over polling, disconnect reasons.
func TestPollingProtocol(t *testing.T) {
	for _, rt := range rts {
		t.Run(rt, func(t *testing.T) {
			reasons := make(chan string, 4)
			_, addr := start(t, rt, socketio.Options{}, func(s *socketio.Server) {
				s.Of("/").OnConnection(func(so *socketio.Socket) {
					so.On("sum", func(e *socketio.Event) {
						var a, b int
						e.Bind(0, &a)
						e.Bind(1, &b)
						e.Ack(a + b)
					})
					so.On("echo", func(e *socketio.Event) { e.Ack(e.Values()...) })
					so.On("push", func(e *socketio.Event) { so.Emit("pushed", "x", []byte{9}) })
					so.OnDisconnect(func(r string) { reasons <- r })
				})
			})
			p := handshake(t, addr)
			if code, body := p.post("40"); code != 200 || body != "ok" {
				t.Fatalf("connect: %d %q", code, body)
			}
			if got := p.poll(); !strings.HasPrefix(got, `40{"sid":"`) {
				t.Fatalf("connect answer: %q", got)
			}
			p.post(`427["sum",2,3]`)
			if got := p.poll(); got != "437[5]" {
				t.Fatalf("ack: %q", got)
			}
			// A binary event over polling: the attachment is base64 with "b".
			p.post("451-8[\"echo\",{\"_placeholder\":true,\"num\":0}]\x1ebAAH/")
			if got := p.poll(); got != "461-8[{\"_placeholder\":true,\"num\":0}]\x1ebAAH/" {
				t.Fatalf("binary ack: %q", got)
			}
			p.post(`42["push"]`)
			if got := p.poll(); got != "451-[\"pushed\",\"x\",{\"_placeholder\":true,\"num\":0}]\x1ebCQ==" {
				t.Fatalf("server binary emit: %q", got)
			}
			p.post("41")
			if r := <-reasons; r != "client namespace disconnect" {
				t.Fatalf("reason %q", r)
			}
		})
	}
}

// TestBadInput: every misuse gets the protocol's answer and costs a
// bounded amount; the server goes on.
func TestBadInput(t *testing.T) {
	_, addr := start(t, "stdhttp", socketio.Options{MaxHTTPBufferSize: 1000, MaxSessions: 5, PingInterval: 200 * time.Millisecond, PingTimeout: 200 * time.Millisecond}, nil)
	base := "http://" + addr + "/socket.io/"
	status := func(method, u, body string) (int, string) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct{ method, query, body, want string }{
		{"GET", "?EIO=3&transport=polling", "", `{"code":5,"message":"Unsupported protocol version"}`},
		{"GET", "?EIO=4&transport=carrier-pigeon", "", `{"code":0,"message":"Transport unknown"}`},
		{"GET", "?EIO=4&transport=polling&sid=nope", "", `{"code":1,"message":"Session ID unknown"}`},
		{"POST", "?EIO=4&transport=polling", "40", `{"code":2,"message":"Bad handshake method"}`},
	} {
		code, body := status(c.method, base+c.query, c.body)
		if code != 400 || strings.TrimSpace(body) != c.want {
			t.Errorf("%s %s: %d %q, want 400 %s", c.method, c.query, code, body, c.want)
		}
	}
	// A body past MaxHTTPBufferSize: 413 and the session ends.
	p := handshake(t, addr)
	if code, _ := p.post("4" + strings.Repeat("x", 2000)); code != 413 {
		t.Fatalf("oversized POST: %d", code)
	}
	if got := p.poll(); !strings.Contains(got, "Session ID unknown") {
		t.Fatalf("after 413: %q", got)
	}
	// Malformed packets end the session with a 400.
	for _, bad := range []string{"9", "4", "49", "42{}", `42[1]`, "45x-[]", "b!!!", `43["no id"]`} {
		p := handshake(t, addr)
		p.post("40")
		p.poll()
		if code, _ := p.post(bad); code != 400 {
			t.Errorf("%q: %d, want 400", bad, code)
		}
	}
	// Two polls at once: the protocol allows one.
	p = handshake(t, addr)
	done := make(chan string)
	go func() { done <- p.poll() }()
	time.Sleep(50 * time.Millisecond)
	if got := p.poll(); !strings.HasPrefix(got, "400") {
		t.Fatalf("second poll: %q", got)
	}
	<-done
	// A client that never answers pings is dropped.
	p = handshake(t, addr)
	if got := p.poll(); got != "2" {
		t.Fatalf("ping: %q", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got := p.poll(); !strings.Contains(got, "Session ID unknown") && got != "1" {
		t.Fatalf("after a missed pong: %q", got)
	}
	// MaxSessions: the sixth concurrent session is refused with 503.
	var ps []*poller
	for range 5 {
		ps = append(ps, handshake(t, addr))
		ps[len(ps)-1].post("3")
	}
	if code, _ := status("GET", base+"?EIO=4&transport=polling", ""); code != 503 {
		t.Fatalf("past MaxSessions: %d", code)
	}
}

// TestNamespacesAndMiddleware over WebSocket: a middleware refuses with a
// reason the client sees, accepts with auth, an unknown namespace is
// refused, the server asks the client for an ack.
func TestNamespacesAndMiddleware(t *testing.T) {
	for _, rt := range rts {
		t.Run(rt, func(t *testing.T) {
			_, addr := start(t, rt, socketio.Options{}, func(s *socketio.Server) {
				admin := s.Of("/admin")
				admin.Use(func(so *socketio.Socket, auth json.RawMessage) error {
					var a struct{ Token string }
					json.Unmarshal(auth, &a)
					if a.Token != "secret" {
						return errors.New("not authorized")
					}
					return nil
				})
				admin.OnConnection(func(so *socketio.Socket) {
					go func() {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						answer, err := so.EmitWithAck(ctx, "question", "?")
						if err == nil && len(answer.Args) == 1 {
							so.Emit("answer-was", answer.Args[0])
						}
					}()
				})
			})
			c := dialWS(t, addr, "")
			read := func() string {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, p, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				return string(p)
			}
			send := func(s string) { c.WriteMessage(websocket.TextMessage, []byte(s)) }
			if got := read(); !strings.HasPrefix(got, `0{"maxPayload":1000000,"pingInterval":25000,"pingTimeout":20000,"sid":"`) {
				t.Fatalf("open: %q", got)
			}
			send("40/nowhere,")
			if got := read(); got != `44/nowhere,{"message":"Invalid namespace"}` {
				t.Fatalf("unknown namespace: %q", got)
			}
			send(`40/admin,{"token":"wrong"}`)
			if got := read(); got != `44/admin,{"message":"not authorized"}` {
				t.Fatalf("refused: %q", got)
			}
			send(`40/admin,{"token":"secret"}`)
			if got := read(); !strings.HasPrefix(got, `40/admin,{"sid":"`) {
				t.Fatalf("accepted: %q", got)
			}
			if got := read(); got != `42/admin,0["question","?"]` {
				t.Fatalf("server ack request: %q", got)
			}
			send(`43/admin,0[42]`)
			if got := read(); got != `42/admin,["answer-was",42]` {
				t.Fatalf("answer: %q", got)
			}
		})
	}
}

// TestRoomsAcrossTransports: a polling client and a WebSocket client in
// one room both get a room emit from outside any handler.
func TestRoomsAcrossTransports(t *testing.T) {
	var mu sync.Mutex
	joined := 0
	sio, addr := start(t, "gnet", socketio.Options{}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			so.Join("r")
			mu.Lock()
			joined++
			mu.Unlock()
		})
	})
	p := handshake(t, addr)
	p.post("40")
	p.poll()
	c := dialWS(t, addr, "")
	c.ReadMessage()
	c.WriteMessage(websocket.TextMessage, []byte("40"))
	c.ReadMessage()
	for deadline := time.Now().Add(5 * time.Second); ; {
		mu.Lock()
		n := joined
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not joined")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sio.Of("/").To("r").Emit("news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if got := p.poll(); got != `42["news",{"n":1}]` {
		t.Fatalf("polling: %q", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, got, _ := c.ReadMessage(); string(got) != `42["news",{"n":1}]` {
		t.Fatalf("websocket: %q", got)
	}
	// The whole namespace (socketio.emit from anywhere).
	if err := sio.Of("/").Emit("all", 2); err != nil {
		t.Fatal(err)
	}
	if got := p.poll(); got != `42["all",2]` {
		t.Fatalf("polling, namespace emit: %q", got)
	}
	if _, got, _ := c.ReadMessage(); string(got) != `42["all",2]` {
		t.Fatalf("websocket, namespace emit: %q", got)
	}
}

// TestWebSocketBounds: over WebSocket a message past MaxHTTPBufferSize,
// or attachments past it together, end the session.
func TestWebSocketBounds(t *testing.T) {
	reasons := make(chan string, 4)
	_, addr := start(t, "gnet", socketio.Options{MaxHTTPBufferSize: 1000}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			so.On("x", func(*socketio.Event) {})
			so.OnDisconnect(func(r string) { reasons <- r })
		})
	})
	for _, c := range []struct {
		name string
		send func(c *websocket.Conn)
		want string
	}{
		{"text", func(c *websocket.Conn) {
			c.WriteMessage(websocket.TextMessage, []byte(`42["x","`+strings.Repeat("y", 1000)+`"]`))
		}, "transport error"},
		{"attachments", func(c *websocket.Conn) {
			c.WriteMessage(websocket.TextMessage, []byte(`452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`))
			c.WriteMessage(websocket.BinaryMessage, make([]byte, 600))
			c.WriteMessage(websocket.BinaryMessage, make([]byte, 600))
		}, "parse error"},
		{"too many attachments", func(c *websocket.Conn) {
			c.WriteMessage(websocket.TextMessage, []byte(`4511-["x"]`))
		}, "parse error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialWS(t, addr, "")
			conn.ReadMessage()
			conn.WriteMessage(websocket.TextMessage, []byte("40"))
			conn.ReadMessage()
			c.send(conn)
			select {
			case r := <-reasons:
				if r != c.want {
					t.Fatalf("reason %q, want %q", r, c.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still connected")
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					break // the WebSocket closes too
				}
			}
		})
	}
}

// TestPollAfterProbeReturnsAtOnce: a client that sends its WebSocket probe
// while no poll is pending, then polls, must get a noop at once to finish
// pausing polling before it upgrades (the Node.js server forces a polling
// cycle); it waited PingInterval + PingTimeout, and browsers' upgrades
// stalled.
func TestPollAfterProbeReturnsAtOnce(t *testing.T) {
	for _, rt := range rts {
		t.Run(rt, func(t *testing.T) {
			_, addr := start(t, rt, socketio.Options{}, nil)
			p := handshake(t, addr)
			p.post("40")
			if got := p.poll(); !strings.HasPrefix(got, "40") {
				t.Fatalf("connect answer: %q", got)
			}
			c := dialWS(t, addr, "&sid="+p.sid)
			c.WriteMessage(websocket.TextMessage, []byte("2probe"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, b, err := c.ReadMessage(); err != nil || string(b) != "3probe" {
				t.Fatalf("probe answer %q, %v", b, err)
			}
			start := time.Now()
			got := p.poll()
			if d := time.Since(start); got != "6" || d > 2*time.Second {
				t.Fatalf("poll after the probe: %q after %v, want a noop at once", got, d)
			}
			c.WriteMessage(websocket.TextMessage, []byte("5"))
		})
	}
}
