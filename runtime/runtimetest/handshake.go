package runtimetest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

func handshakeCases() []testCase {
	type hc struct {
		name   string
		opts   func(*api.Options)
		head   func(addr string) string
		status int
		header [2]string // a response header that must be present
	}
	req := func(method, path string, lines ...string) func(addr string) string {
		return func(addr string) string {
			return method + " " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n"
		}
	}
	key := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
	up := []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"}
	with := func(extra ...string) []string { return append(append([]string{}, up...), extra...) }
	hcs := []hc{
		{name: "missing key", head: req("GET", "/echo", up...), status: 400},
		{name: "key not 16 bytes", head: req("GET", "/echo", with("Sec-WebSocket-Key: c2hvcnQ=")...), status: 400},
		{name: "key not base64", head: req("GET", "/echo", with("Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==")...), status: 400},
		{name: "wrong version", head: req("GET", "/echo", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 8", key), status: 426, header: [2]string{"Sec-WebSocket-Version", "13"}},
		{name: "missing version", head: req("GET", "/echo", "Upgrade: websocket", "Connection: Upgrade", key), status: 426, header: [2]string{"Sec-WebSocket-Version", "13"}},
		{name: "POST", head: req("POST", "/echo", with(key, "Content-Length: 0")...), status: 405},
		{name: "PUT", head: req("PUT", "/echo", with(key, "Content-Length: 0")...), status: 405},
		{name: "plain GET on a WebSocket route", head: req("GET", "/echo"), status: 426, header: [2]string{"Upgrade", "websocket"}},
		{name: "Connection without upgrade token", head: req("GET", "/echo", "Upgrade: websocket", "Connection: keep-alive", "Sec-WebSocket-Version: 13", key), status: 426},
		{name: "Upgrade header not websocket", head: req("GET", "/echo", "Upgrade: h2c", "Connection: Upgrade", "Sec-WebSocket-Version: 13", key), status: 426},
		{name: "unknown route", head: req("GET", "/nope", with(key)...), status: 404},
		{name: "bad origin", head: req("GET", "/echo", with(key, "Origin: http://evil.example")...), status: 403},
		{name: "origin of same host", head: func(addr string) string { return req("GET", "/echo", with(key, "Origin: http://"+addr)...)(addr) }, status: 101},
		{name: "origin in allow list", opts: func(o *api.Options) { o.OriginPatterns = []string{"*.example.com"} }, head: req("GET", "/echo", with(key, "Origin: https://app.example.com")...), status: 101},
		{name: "origin check func refuses", opts: func(o *api.Options) { o.CheckOrigin = func(*http.Request) bool { return false } }, head: req("GET", "/echo", with(key)...), status: 403},
		{name: "no origin allowed", head: req("GET", "/echo", with(key)...), status: 101, header: [2]string{"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}},
		{name: "connection token list and mixed case", head: req("GET", "/echo", "Upgrade: WebSocket", "Connection: keep-alive, Upgrade", "Sec-WebSocket-Version: 13", key), status: 101},
		{name: "HTTP/1.0", head: func(addr string) string {
			return "GET /echo HTTP/1.0\r\nHost: " + addr + "\r\n" + strings.Join(with(key), "\r\n") + "\r\n\r\n"
		}, status: 400},
		{name: "header just over the limit", opts: func(o *api.Options) { o.MaxHeaderBytes = 8192 }, head: req("GET", "/echo", with(key, "X-Big: "+strings.Repeat("a", 8300))...), status: 431},
		{name: "body on an upgrade", head: func(addr string) string {
			return req("GET", "/echo", with(key, "Content-Length: 5")...)(addr) + "hello"
		}, status: 400},
		{name: "chunked body on an upgrade", head: func(addr string) string {
			return req("GET", "/echo", with(key, "Transfer-Encoding: chunked")...)(addr) + "5\r\nhello\r\n0\r\n\r\n"
		}, status: 400},
		// Heads net/http's server refuses: every runtime refuses them on
		// the upgrade path too (gnet parses upgrades itself).
		{name: "space before a header's colon", head: func(addr string) string {
			return req("GET", "/echo", with(key, "Content-Length : 6")...)(addr) + "\x81\x80abcd"
		}, status: 400},
		{name: "malformed Host", head: func(string) string {
			return "GET /echo HTTP/1.1\r\nHost: a b\r\n" + strings.Join(with(key), "\r\n") + "\r\n\r\n"
		}, status: 400},
		{name: "two Host headers", head: func(addr string) string {
			return "GET /echo HTTP/1.1\r\nHost: " + addr + "\r\nHost: " + addr + "\r\n" + strings.Join(with(key), "\r\n") + "\r\n\r\n"
		}, status: 400},
		{name: "HTTP/2.0 in the request line", head: func(addr string) string {
			return "GET /echo HTTP/2.0\r\nHost: " + addr + "\r\n" + strings.Join(with(key), "\r\n") + "\r\n\r\n"
		}, status: 505},
		{name: "empty chunked body on an upgrade", head: func(addr string) string {
			return req("GET", "/echo", with(key, "Transfer-Encoding: chunked")...)(addr) + "0\r\n\r\n"
		}, status: 400},
		{name: "header larger than the limit", opts: func(o *api.Options) { o.MaxHeaderBytes = 1024 }, head: req("GET", "/echo", with(key, "X-Big: "+strings.Repeat("a", 8192))...), status: 431},
	}
	var cases []testCase
	for _, h := range hcs {
		cases = append(cases, testCase{name: "handshake/" + strings.ReplaceAll(h.name, " ", "_"), run: func(t *testing.T, k *kit) {
			o := testOptions()
			if h.opts != nil {
				h.opts(&o)
			}
			s := k.echo(o)
			c, resp := rawDial(t, s.addr, h.head(s.addr))
			if resp.StatusCode != h.status {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, h.status, body)
			}
			if h.header[0] != "" && resp.Header.Get(h.header[0]) != h.header[1] {
				t.Fatalf("header %s = %q, want %q", h.header[0], resp.Header.Get(h.header[0]), h.header[1])
			}
			if h.status == 101 {
				c.conn.SetDeadline(time.Time{})
				c.text("ok")
				c.expectMessage(ws.OpText, []byte("ok"))
			}
		}})
	}

	cases = append(cases,
		testCase{name: "handshake/subprotocol_server_preference", run: func(t *testing.T, k *kit) {
			got := make(chan string, 1)
			s := k.serve(withProtos(testOptions(), "chat.v2", "chat.v1"), func(r *api.Router) {
				r.Handle("/p", func(ws api.Conn) { got <- ws.Subprotocol() })
			})
			c, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/p", "Sec-WebSocket-Protocol: chat.v1, chat.v2"))
			if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat.v2" {
				t.Fatalf("status %d protocol %q, want 101 chat.v2", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Protocol"))
			}
			if p := within(t, 5*time.Second, got, "handler"); p != "chat.v2" {
				t.Fatalf("Subprotocol() = %q", p)
			}
			c.finishClose(api.StatusNormalClosure)
		}},
		testCase{name: "handshake/subprotocol_no_overlap", run: func(t *testing.T, k *kit) {
			got := make(chan string, 1)
			s := k.serve(withProtos(testOptions(), "a"), func(r *api.Router) {
				r.Handle("/p", func(ws api.Conn) { got <- ws.Subprotocol() })
			})
			_, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/p", "Sec-WebSocket-Protocol: b", "Sec-WebSocket-Protocol: c"))
			if resp.StatusCode != 101 || len(resp.Header.Values("Sec-WebSocket-Protocol")) != 0 {
				t.Fatalf("status %d protocol %q, want 101 and none", resp.StatusCode, resp.Header.Values("Sec-WebSocket-Protocol"))
			}
			if p := within(t, 5*time.Second, got, "handler"); p != "" {
				t.Fatalf("Subprotocol() = %q, want empty", p)
			}
		}},
		testCase{name: "handshake/subprotocol_second_header_line", run: func(t *testing.T, k *kit) {
			s := k.serve(withProtos(testOptions(), "x", "y"), func(r *api.Router) { r.Handle("/p", echo) })
			_, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/p", "Sec-WebSocket-Protocol: z", "Sec-WebSocket-Protocol: y"))
			if resp.Header.Get("Sec-WebSocket-Protocol") != "y" {
				t.Fatalf("protocol %q, want y", resp.Header.Get("Sec-WebSocket-Protocol"))
			}
		}},
		testCase{name: "handshake/frame_pipelined_behind_request", run: func(t *testing.T, k *kit) {
			s := k.echo(testOptions())
			head := upgradeHead(s.addr, "/echo") + string(encode(true, 0, ws.OpText, []byte("early")))
			c, resp := rawDial(t, s.addr, head)
			if resp.StatusCode != 101 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			c.expectMessage(ws.OpText, []byte("early"))
		}},
		testCase{name: "handshake/request_byte_by_byte_then_frame", run: func(t *testing.T, k *kit) {
			s := k.echo(testOptions())
			nc, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			c := &client{t: t, conn: nc, br: bufio.NewReader(nc)}
			defer nc.Close()
			for _, b := range []byte(upgradeHead(s.addr, "/echo")) {
				nc.Write([]byte{b})
				time.Sleep(200 * time.Microsecond)
			}
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("response %v %v", resp, err)
			}
			c.text("after a slow request")
			c.expectMessage(ws.OpText, []byte("after a slow request"))
		}},
		testCase{name: "handshake/slowloris_cut_at_handshake_timeout", run: func(t *testing.T, k *kit) {
			o := testOptions()
			o.HandshakeTimeout = 500 * time.Millisecond
			s := k.echo(o)
			nc, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			start := time.Now()
			io.WriteString(nc, "GET /echo HTTP/1.1\r\nHost: x\r\n")
			cut := make(chan error, 1)
			go func() {
				// Trickle one header byte every 100 ms; the server must cut us anyway.
				for i := 0; i < 100; i++ {
					time.Sleep(100 * time.Millisecond)
					if _, err := nc.Write([]byte("X")); err != nil {
						cut <- err
						return
					}
				}
				cut <- nil
			}()
			nc.SetReadDeadline(time.Now().Add(8 * time.Second))
			buf := make([]byte, 512)
			for {
				if _, err := nc.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatalf("connection still open after %v", time.Since(start))
					}
					break
				}
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("cut after %v, handshake timeout is %v", d, o.HandshakeTimeout)
			}
			nc.Close()
			<-cut
		}},
		testCase{name: "handshake/upgrade_with_a_trickled_body_is_refused_at_once", run: func(t *testing.T, k *kit) {
			// Refused for its body, an upgrade gets its 400 without the
			// server reading the body first: net/http did, and a client
			// trickling a chunked body held the connection without an
			// answer for as long as it went on.
			// (fasthttp reads a body before any handler runs: it answers
			// 408 once HandshakeTimeout, its read timeout, has passed.)
			o := testOptions()
			o.HandshakeTimeout = time.Second
			s := k.echo(o)
			nc, br := rawConn(t, s.addr)
			io.WriteString(nc, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
			nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within 3 s: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d, want 400 (or 408 from a runtime that reads bodies first)", resp.StatusCode)
			}
		}},
		testCase{name: "handshake/max_connections_503", run: func(t *testing.T, k *kit) {
			o := testOptions()
			o.MaxConnections = 2
			s := k.echo(o)
			a, b := dial(t, s.addr, "/echo"), dial(t, s.addr, "/echo")
			_, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/echo"))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("third connection: status %d, want 503", resp.StatusCode)
			}
			a.closeFrame(1000, "")
			a.finishClose(1000)
			// Room again once one closed.
			deadline := time.Now().Add(5 * time.Second)
			for {
				c, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/echo"))
				if resp.StatusCode == 101 {
					c.conn.SetDeadline(time.Time{})
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no room after a connection closed: %d", resp.StatusCode)
				}
				time.Sleep(20 * time.Millisecond)
			}
			b.text("still")
			b.expectMessage(ws.OpText, []byte("still"))
		}},
	)
	return cases
}

func withProtos(o api.Options, p ...string) api.Options {
	o.Subprotocols = p
	return o
}
