// Package handlers holds ready-made WebSocket handlers.
package handlers

import "github.com/wsmatrix/wsmatrix/api"

// Echo sends every message back with its type, in blocking style, until
// the peer closes.
func Echo(ws api.Conn) {
	for {
		m, err := ws.Receive()
		if err != nil {
			return
		}
		err = ws.Send(m)
		m.Release() // Send kept nothing of it
		if err != nil {
			return
		}
	}
}

// EchoEvent sends every message back with its type, in event style: the
// connection holds no goroutine of its own while idle.
func EchoEvent(ws api.Conn) {
	ws.OnMessage(func(m api.Message) {
		ws.Send(m)
		m.Release() // Send kept nothing of it
	})
}
