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
	"sync"

	"github.com/lxzan/gws"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

type echo struct{ gws.BuiltinEventHandler }

func (echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.WriteMessage(m.Opcode, m.Bytes())
}

func (echo) OnPing(c *gws.Conn, payload []byte) { c.WritePong(payload) }

// room relays every message to every connection of /broadcast with gws's
// Broadcaster: the frame is built once and written through each
// connection's asynchronous write queue.
type room struct {
	gws.BuiltinEventHandler
	members sync.Map // *gws.Conn -> struct{}
}

func (r *room) OnOpen(c *gws.Conn)                 { r.members.Store(c, struct{}{}) }
func (r *room) OnClose(c *gws.Conn, _ error)       { r.members.Delete(c) }
func (r *room) OnPing(c *gws.Conn, payload []byte) { c.WritePong(payload) }
func (r *room) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := gws.NewBroadcaster(m.Opcode, m.Bytes())
	defer b.Close()
	r.members.Range(func(k, _ any) bool {
		b.Broadcast(k.(*gws.Conn))
		return true
	})
}

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
	roomOpt := *opt
	roomUp := gws.NewUpgrader(&room{}, &roomOpt)
	peers.Serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := up
		if r.URL.Path == "/broadcast" {
			u = roomUp
		}
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
}
