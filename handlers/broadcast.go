package handlers

import (
	"sync"

	"github.com/wsmatrix/wsmatrix/api"
)

// Broadcast returns a handler that relays every message any of its
// connections sends to all of them (the sender included), in event style.
// It is the simplest chat room; rooms across processes belong to the hub.
func Broadcast() api.Handler {
	var (
		mu    sync.RWMutex
		conns = map[api.Conn]struct{}{}
	)
	return func(ws api.Conn) {
		mu.Lock()
		conns[ws] = struct{}{}
		mu.Unlock()
		ws.OnClose(func(*api.CloseError) {
			mu.Lock()
			delete(conns, ws)
			mu.Unlock()
		})
		ws.OnMessage(func(m api.Message) {
			mu.RLock()
			defer mu.RUnlock()
			for c := range conns {
				c.Send(m) // a slow or gone subscriber fails alone
			}
		})
	}
}
