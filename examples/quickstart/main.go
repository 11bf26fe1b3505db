// Command quickstart is the README's first program: a chat-room echo at
// /chat/{room}, on the runtime named by --runtime.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	_ "github.com/wsmatrix/wsmatrix/runtime/all" // stdhttp, fasthttp and gnet
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	name := flag.String("runtime", "stdhttp", "stdhttp, fasthttp or gnet")
	flag.Parse()

	router := api.NewRouter()
	router.Handle("/chat/{room}", func(ws api.Conn) {
		room := ws.Request().PathValue("room")
		for {
			m, err := ws.ReceiveTimeout(30 * time.Second)
			if errors.Is(err, api.ErrTimeout) {
				ws.SendText("still there?") // the connection stays open
				continue
			}
			if err != nil {
				return // *api.CloseError: the peer closed or vanished
			}
			ws.SendText(room + ": " + m.String())
		} // returning closes with 1000
	})

	rt, err := runtime.New(*name, router, api.Options{})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving ws://%s/chat/{room} on %s", *addr, rt.Name())
	// Serve blocks until Ctrl-C or SIGTERM, then closes every connection
	// with 1001; a failure to listen is returned at once.
	if err := runtime.Serve(context.Background(), rt, *addr); err != nil {
		log.Fatal(err)
	}
}
