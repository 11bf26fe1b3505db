// Command gws is an echo server on net/http with lxzan/gws: an event
// handler per connection, ReadLoop on its own goroutine.
//
// gws checks UTF-8 only with CheckUtf8Enabled (1007) and enforces
// ReadMaxPayloadSize (1009); it answers a close with a close, but its
// BuiltinEventHandler answers a ping with an empty pong, so OnPing here
// sends the ping's payload back.
package main

import (
	"flag"
	"net/http"

	"github.com/lxzan/gws"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

type echo struct{ gws.BuiltinEventHandler }

func (echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.WriteMessage(m.Opcode, m.Bytes())
}

func (echo) OnPing(c *gws.Conn, payload []byte) { c.WritePong(payload) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	compression := peers.Compression()
	flag.Parse()
	peers.CheckCompression(*compression)
	opt := &gws.ServerOption{
		CheckUtf8Enabled:   true,
		ReadMaxPayloadSize: peers.ReadLimit,
	}
	if *compression != "off" {
		opt.PermessageDeflate.Enabled = true
		opt.PermessageDeflate.Level = peers.CompressionLevel
		opt.PermessageDeflate.Threshold = peers.CompressionThreshold
		takeover := *compression == "context-takeover"
		opt.PermessageDeflate.ServerContextTakeover = takeover
		opt.PermessageDeflate.ClientContextTakeover = takeover
	}
	up := gws.NewUpgrader(echo{}, opt)
	peers.Serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
}
