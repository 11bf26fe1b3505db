// Command gws is an echo server on net/http with lxzan/gws: an event
// handler per connection, ReadLoop on its own goroutine.
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

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	flag.Parse()
	up := gws.NewUpgrader(echo{}, &gws.ServerOption{})
	peers.Serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
}
