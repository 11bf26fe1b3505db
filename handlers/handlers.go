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
		if err := ws.Send(m); err != nil {
			return
		}
	}
}
