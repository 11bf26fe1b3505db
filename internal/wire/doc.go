// Package wire is the one RFC 6455 engine of wsmatrix: a sans-I/O frame
// parser and writer, the close handshake rules, fail-fast UTF-8 checking,
// limits, masking and the server side of the opening handshake.
//
// Nothing here touches a socket or starts a goroutine: bytes go in, events
// and bytes come out. Every runtime uses it, so a protocol behaviour cannot
// differ between runtimes, and all of it is fuzzed without a network.
// The frame header codec and masking come from github.com/gobwas/ws.
package wire
