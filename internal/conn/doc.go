// Package conn is the one implementation of api.Conn, on top of the wire
// engine: the inbox and Receive with timeout, event-style dispatch on a
// shared pool, ordered concurrent sends with a bounded queue, keepalive,
// the close handshake and graceful shutdown. A runtime only hands each
// connection a Transport and feeds it the bytes it reads.
package conn
