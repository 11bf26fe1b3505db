package handlers

import (
	_ "embed"
	"net/http"
)

//go:embed demo.html
var demoPage []byte

// Demo serves the demo page: a text input and a log, over the echo at
// /echo; sent lines are red, received lines blue. It is one HTML file with
// its script inline: no build step, no CDN, same origin as the socket.
// Serve it beside Echo:
//
//	router.HandleHTTP("GET /{$}", handlers.Demo)
//	router.Handle("/echo", handlers.Echo)
var Demo http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(demoPage)
})
