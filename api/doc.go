// Package api is what a WebSocket handler author imports: the Handler and
// Conn types, messages and close codes, the Router and the Options.
//
// A Handler is written once and runs unchanged on every wsmatrix runtime
// (net/http, fasthttp, gnet). It comes in two styles on the same type.
//
// # Blocking style
//
// The handler loops on Receive and Send, like Flask-Sock's ws.receive() and
// ws.send(). Returning from the handler closes the connection with 1000.
//
//	func echo(ws api.Conn) {
//		for {
//			m, err := ws.Receive()
//			if err != nil {
//				return // *api.CloseError when the peer closed
//			}
//			ws.Send(m)
//		}
//	}
//
// # Event style
//
// The handler registers OnMessage and OnClose and returns; the connection
// stays open. Messages are delivered in order, one at a time per connection,
// on a bounded pool shared by all connections, so an idle connection holds
// no goroutine of its own for the handler.
//
// # Closing
//
// However a connection ends, the handler learns it the same way on every
// runtime: Receive and Send return a *CloseError (use errors.As), OnClose runs
// once, and Context is done. Pings are answered and the close handshake is
// completed by the runtime whatever the handler is doing.
package api
