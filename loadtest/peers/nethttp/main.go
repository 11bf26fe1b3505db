// Command nethttp is a bare net/http server: GET /healthz answers "ok",
// the baseline of the http scenario (plain routes on a runtime against
// net/http alone). It serves no WebSocket.
package main

import (
	"flag"
	"io"
	"net/http"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	peers.Serve(*addr, mux)
}
