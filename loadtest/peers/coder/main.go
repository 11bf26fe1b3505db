// Command coder is an echo server on net/http with coder/websocket: one
// goroutine per connection, Read then Write.
//
// coder enforces the read limit set with SetReadLimit (1009; its default
// is 32 KiB), answers a ping with its payload and a close with a close; it
// does not check that text messages are UTF-8, so the handler does (1007,
// with Close, which waits for the client's close).
package main

import (
	"context"
	"flag"
	"net/http"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	compression := peers.Compression()
	flag.Parse()
	peers.CheckCompression(*compression)
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true}
	switch *compression {
	case "no-context-takeover":
		opts.CompressionMode, opts.CompressionThreshold = websocket.CompressionNoContextTakeover, peers.CompressionThreshold
	case "context-takeover":
		opts.CompressionMode, opts.CompressionThreshold = websocket.CompressionContextTakeover, peers.CompressionThreshold
	}
	peers.Serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(peers.ReadLimit)
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageText && !utf8.Valid(p) {
				c.Close(websocket.StatusInvalidFramePayloadData, "invalid UTF-8")
				return
			}
			if c.Write(ctx, typ, p) != nil {
				return
			}
		}
	}))
}
