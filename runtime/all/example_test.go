package all_test

import (
	"context"
	"fmt"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/runtime/all"
)

// The runtime is a word from configuration: the same router and handler
// run on each.
func Example() {
	router := api.NewRouter()
	router.Handle("/hello/{name}", func(ws api.Conn) {
		ws.SendText("hello " + ws.Request().PathValue("name"))
	})
	for _, name := range []string{"stdhttp", "fasthttp", "gnet"} { // e.g. from a config file
		rt, err := runtime.New(name, router, api.Options{})
		if err != nil {
			panic(err)
		}
		addr, err := rt.Start("127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr.String()+"/hello/"+name, nil)
		if err != nil {
			panic(err)
		}
		_, p, _ := c.ReadMessage()
		fmt.Println(string(p))
		c.Close()
		rt.Shutdown(context.Background())
	}
	fmt.Println("default:", all.Default())
	// Output:
	// hello stdhttp
	// hello fasthttp
	// hello gnet
	// default: stdhttp
}
