package fasthttp_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	fh "github.com/valyala/fasthttp"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime/fasthttp"
)

// app is an existing fasthttp application with WebSocket routes in front.
// With configure, ws.Configure prepares the application's server.
func app(t *testing.T, configure bool, extra func(*fh.Server)) (addr string, ws *fasthttp.Server) {
	t.Helper()
	router := api.NewRouter()
	router.Handle("/ws/{room}", func(c api.Conn) {
		for {
			m, err := c.Receive()
			if err != nil {
				return
			}
			r := c.Request()
			c.SendText(fmt.Sprintf("%s|%s|%s|%s", r.PathValue("room"), r.URL.Query().Get("u"), r.Header.Get("X-Team"), m))
		}
	})
	ws, err := fasthttp.New(router, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := &fh.Server{Handler: ws.Handler(func(ctx *fh.RequestCtx) {
		// The application's own routes, which reuse RequestCtx buffers.
		fmt.Fprintf(ctx, "app:%s:%s", ctx.Path(), strings.Repeat("z", 200))
	}),
		// fasthttp's worker-pool cleaner sleeps this long between rounds and
		// outlives Shutdown by up to as much: keep it short for the leak check.
		MaxIdleWorkerDuration: 100 * time.Millisecond,
	}
	if configure {
		ws.Configure(srv)
	}
	if extra != nil {
		extra(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.ShutdownWithContext(ctx)
		ws.Shutdown(ctx)
		<-done
	})
	return l.Addr().String(), ws
}

// TestInFrontOfApp: upgrades on WebSocket routes go to wsmatrix, everything
// else to the application, on one port; the upgrade request's URL
// variables, query and headers survive while the application serves
// thousands of other requests through reused RequestCtx buffers.
func TestInFrontOfApp(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("Configure=%v", keep), func(t *testing.T) {
			addr, _ := app(t, keep, nil)
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			h := http.Header{"X-Team": {"blue"}}
			c, _, err := d.Dial("ws://"+addr+"/ws/lobby?u=ada", h)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer hc.CloseIdleConnections()
			for i := range 500 {
				resp, err := hc.Get(fmt.Sprintf("http://%s/page/%d?u=eve", addr, i))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasPrefix(string(b), fmt.Sprintf("app:/page/%d:", i)) {
					t.Fatalf("app route: %q", b)
				}
				if i%100 == 0 {
					c.WriteMessage(websocket.TextMessage, []byte("m"))
					_, p, err := c.ReadMessage()
					if err != nil || string(p) != "lobby|ada|blue|m" {
						t.Fatalf("after %d app requests: %q %v", i, p, err)
					}
				}
			}
			// A WebSocket-looking request for a path with no WebSocket route is the app's.
			resp, err := http.Get("http://" + addr + "/ws")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(b), "app:/ws:") {
				t.Fatalf("non-WebSocket path: %q", b)
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			c.ReadMessage()
		})
	}
}

// TestHijackPitfalls: requests and servers on which a naive fasthttp
// upgrade breaks.
func TestHijackPitfalls(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	head := func(conn string) string {
		return "GET /ws/r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: " + conn +
			"\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	}
	tests := []struct {
		name      string
		configure func(*fh.Server)
		head      string
	}{
		{"connection close token with upgrade", nil, head("Upgrade, close")},
		{"keep-alive, Upgrade token list", nil, head("keep-alive, Upgrade")},
		{"MaxRequestsPerConn reached on the upgrade", func(s *fh.Server) { s.MaxRequestsPerConn = 1 }, head("Upgrade")},
		{"server keeps hijacked conns", func(s *fh.Server) { s.KeepHijackedConns = true }, head("Upgrade")},
		{"frame pipelined behind the request", nil, head("Upgrade") + string([]byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := app(t, false, tt.configure)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(nc, tt.head)
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Connection"), "Upgrade") || resp.Header.Get("Sec-WebSocket-Accept") == "" {
				t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
			}
			if !strings.Contains(tt.head, "\r\n\r\n\x81") {
				nc.Write([]byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'}) // "hi", zero mask
			}
			want := "r|||hi"
			hdr := make([]byte, 2)
			if _, err := io.ReadFull(br, hdr); err != nil {
				t.Fatal(err)
			}
			p := make([]byte, hdr[1]&0x7f)
			io.ReadFull(br, p)
			if hdr[0] != 0x81 || string(p) != want {
				t.Fatalf("echo: %x %q, want %q", hdr, p, want)
			}
		})
	}
}
