// Command nbio is an echo server on lesismal/nbio's HTTP engine in
// non-blocking mode: connections are read by nbio's pollers, with no
// goroutine per connection.
//
// nbio checks that text messages are UTF-8 (its engine's CheckUtf8,
// utf8.Valid by default; it closes with 1002 rather than 1007), answers a
// ping with its payload and a close with a close, and enforces the
// upgrader's MessageLengthLimit (1009; its default is 4 MiB).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on (port 0: a free port)")
	flag.Parse()
	if a := *addr; len(a) > 2 && a[len(a)-2:] == ":0" {
		*addr = peers.FreeAddr()
	}
	up := websocket.NewUpgrader()
	up.CheckOrigin = func(*http.Request) bool { return true }
	up.MessageLengthLimit = peers.ReadLimit
	up.OnMessage(func(c *websocket.Conn, t websocket.MessageType, p []byte) { c.WriteMessage(t, p) })
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { up.Upgrade(w, r, nil) })
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp", Addrs: []string{*addr}, Handler: mux,
		IOMod: nbhttp.IOModNonBlocking,
		// OnMessage's payload goes back to nbio's pool when it returns
		// (the echo has written it by then), as gws's echo gives back
		// its message and wsmatrix's releases it.
		ReleaseWebsocketPayload: true,
	})
	if err := engine.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	peers.Listening(*addr)
	peers.WaitSignal()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	engine.Shutdown(ctx)
}
