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
// # Messages that are released
//
// A received message's Data belongs to the handler. One that is done with
// it, typically once it has sent an answer (Send keeps nothing of Data),
// may give its storage back with Message.Release: the next messages, on
// any connection, are received into it instead of new memory. This saves
// an allocation per message and, more, the garbage a burst of messages
// leaves on the heap until the next collection, which an event-loop server
// holding many connections pays in memory per connection:
//
//	ws.OnMessage(func(m api.Message) {
//		ws.Send(m)
//		m.Release()
//	})
//
// Nothing may use Data, or a slice of it, after Release, and a message is
// released at most once.
//
// # Closing
//
// However a connection ends, the handler learns it the same way on every
// runtime: Receive and Send return a *CloseError (use errors.As), OnClose runs
// once, and Context is done. Pings are answered and the close handshake is
// completed by the runtime whatever the handler is doing.
package api
