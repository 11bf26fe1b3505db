package peers

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// The work every WebSocket peer does, as wsmatrix does by default: a text
// message that is not UTF-8 closes the connection with 1007, a ping is
// answered with a pong carrying its payload, a message larger than
// ReadLimit closes with 1009, and a close from the client is answered.
// Where a library leaves a check out, the peer's handler does it.
const (
	// ReadLimit is the largest message a peer takes: wsmatrix's
	// api.DefaultReadLimit.
	ReadLimit = 16 << 20
	// CloseTimeout is how long a peer that closes waits for the client's
	// close frame: wsmatrix's api.DefaultCloseTimeout.
	CloseTimeout = 5 * time.Second
)

// Serve serves h on addr with net/http, logs the bound address the way
// `wsmatrix bench` reads it, and stops on SIGINT or SIGTERM.
func Serve(addr string, h http.Handler) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	Listening(l.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		WaitSignal()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Listening logs the address a peer listens on.
func Listening(addr string) { fmt.Fprintf(os.Stderr, "msg=listening addr=%s\n", addr) }

// WaitSignal blocks until SIGINT or SIGTERM.
func WaitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
}

// FreeAddr returns a free loopback address, for servers that cannot
// listen on port 0 and report it.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Compression is the --compression flag of the peers that can compress:
// off, no-context-takeover or context-takeover, as wsmatrix serve takes
// it. Threshold and level are wsmatrix's defaults: messages under 512
// bytes go uncompressed, flate level 1.
func Compression() *string {
	return flag.String("compression", "off", "permessage-deflate: off, no-context-takeover or context-takeover")
}

// CompressionThreshold and CompressionLevel are wsmatrix's defaults.
const (
	CompressionThreshold = 512
	CompressionLevel     = 1
)

// CheckCompression exits with a usage error for a mode a peer does not
// know.
func CheckCompression(mode string) {
	switch mode {
	case "off", "no-context-takeover", "context-takeover":
		return
	}
	fmt.Fprintf(os.Stderr, "--compression %q: off, no-context-takeover or context-takeover\n", mode)
	os.Exit(2)
}
