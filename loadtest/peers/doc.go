// Package peers holds echo servers built on other WebSocket libraries, for
// measuring wsmatrix against them with `wsmatrix bench --peers`. It is a
// module of its own so that wsmatrix's go.mod never depends on them. Each
// peer is a main package that takes --addr and logs "msg=listening
// addr=HOST:PORT" on stderr.
//
// Every WebSocket peer does the work wsmatrix does for a message (see
// ReadLimit and TestPeersDoTheWork); rawtcp, the ceiling of the echo
// comparison, does none of it by design.
package peers
