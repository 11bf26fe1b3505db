// Package peers holds echo servers built on other WebSocket libraries, for
// measuring wsmatrix against them with `wsmatrix bench --peers`. It is a
// module of its own so that wsmatrix's go.mod never depends on them. Each
// peer is a main package that takes --addr and logs "msg=listening
// addr=HOST:PORT" on stderr.
package peers
