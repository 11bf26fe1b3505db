package fasthttp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
	fh "github.com/valyala/fasthttp"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime/fasthttp"
)

// WebSocket routes in front of an existing fasthttp application: upgrades
// for /ws/... go to wsmatrix, every other request to the application.
func ExampleServer_Handler() {
	router := api.NewRouter()
	router.Handle("/ws/echo", func(ws api.Conn) {
		m, _ := ws.Receive()
		ws.Send(m)
	})
	wsrv, _ := fasthttp.New(router, api.Options{})

	app := func(ctx *fh.RequestCtx) { fmt.Fprintf(ctx, "page %s", ctx.Path()) }
	srv := &fh.Server{Handler: wsrv.Handler(app)}
	wsrv.Configure(srv) // lets hijacked connections release fasthttp's buffers

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer func() {
		srv.Shutdown()
		wsrv.Shutdown(context.Background())
	}()

	resp, err := http.Get("http://" + l.Addr().String() + "/home")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	c, _, err := websocket.DefaultDialer.Dial("ws://"+l.Addr().String()+"/ws/echo", nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, p, _ := c.ReadMessage()
	fmt.Println(string(p))
	// Output:
	// page /home
	// hello
}
