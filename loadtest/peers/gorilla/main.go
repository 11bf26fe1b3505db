// Command gorilla is an echo server on net/http with gorilla/websocket:
// one goroutine per connection, ReadMessage then WriteMessage.
//
// gorilla enforces the read limit set with SetReadLimit (1009), answers a
// ping with its payload and a close with a close; it does not check that
// text messages are UTF-8, so the handler does (1007).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	compression := peers.Compression()
	flag.Parse()
	peers.CheckCompression(*compression)
	if *compression == "context-takeover" {
		fmt.Fprintln(os.Stderr, "gorilla compresses without context takeover only")
		os.Exit(2)
	}
	// EnableCompression negotiates permessage-deflate without context
	// takeover; writes are then compressed at level 1 (gorilla has no
	// threshold).
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, EnableCompression: *compression != "off"}
	peers.Serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(peers.ReadLimit)
		c.SetCompressionLevel(peers.CompressionLevel)
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if typ == websocket.TextMessage && !utf8.Valid(p) {
				fail(c, websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
				return
			}
			if c.WriteMessage(typ, p) != nil {
				return
			}
		}
	}))
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
