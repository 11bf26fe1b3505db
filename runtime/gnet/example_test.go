package gnet_test

import (
	"context"
	"fmt"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime/gnet"
)

// A standalone event-loop server: event-style handlers hold no goroutine
// per idle connection.
func ExampleNew() {
	router := api.NewRouter()
	router.Handle("/echo", func(ws api.Conn) {
		ws.OnMessage(func(m api.Message) { ws.Send(m) })
	})
	srv, err := gnet.New(router, api.Options{}, gnet.WithLoops(2))
	if err != nil {
		panic(err)
	}
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())

	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr.String()+"/echo", nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	_, p, _ := c.ReadMessage()
	fmt.Println(p)
	// Output: [1 2 3]
}
