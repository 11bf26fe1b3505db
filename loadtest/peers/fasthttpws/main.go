// Command fasthttpws is an echo server on fasthttp with
// github.com/fasthttp/websocket's FastHTTPUpgrader: what a fasthttp team
// would write without wsmatrix. /echo echoes every message with its type.
//
// Like gorilla, of which it is a fork, fasthttp/websocket enforces the read
// limit set with SetReadLimit (1009), answers a ping with its payload and a
// close with a close, and does not check that text messages are UTF-8: the
// handler does (1007).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	flag.Parse()
	up := websocket.FastHTTPUpgrader{CheckOrigin: func(*fasthttp.RequestCtx) bool { return true }}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/echo" {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
		err := up.Upgrade(ctx, func(c *websocket.Conn) {
			defer c.Close()
			c.SetReadLimit(peers.ReadLimit)
			for {
				typ, p, err := c.ReadMessage()
				if err != nil {
					return
				}
				if typ == websocket.TextMessage && !utf8.Valid(p) {
					fail(c, websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
					return
				}
				if err := c.WriteMessage(typ, p); err != nil {
					return
				}
			}
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "upgrade:", err)
		}
	}}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	peers.Listening(l.Addr().String())
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		srv.Shutdown()
	}()
	if err := srv.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// fail sends a close frame and waits for the client's close.
func fail(c *websocket.Conn, code int, reason string) {
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.SetReadDeadline(time.Now().Add(peers.CloseTimeout))
	for {
		if _, _, err := c.NextReader(); err != nil {
			return
		}
	}
}
