package stdhttp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/runtime/stdhttp"
)

// A blocking-style handler on a runtime chosen by name.
func Example() {
	router := api.NewRouter()
	router.Handle("/chat/{room}", func(ws api.Conn) {
		for {
			m, err := ws.Receive()
			if err != nil {
				return
			}
			ws.SendText(ws.Request().PathValue("room") + ": " + m.String())
		}
	})
	rt, err := runtime.New("stdhttp", router, api.Options{})
	if err != nil {
		panic(err)
	}
	addr, err := rt.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer rt.Shutdown(context.Background())

	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr.String()+"/chat/lobby", nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, p, _ := c.ReadMessage()
	fmt.Println(string(p))
	// Output: lobby: hello
}

// An event-style handler: it registers callbacks and returns; the
// connection stays open.
func Example_eventStyle() {
	router := api.NewRouter()
	router.Handle("/shout", func(ws api.Conn) {
		ws.OnMessage(func(m api.Message) {
			ws.SendText(strings.ToUpper(m.String()))
		})
	})
	srv, _ := stdhttp.New(router, api.Options{})
	addr, _ := srv.Start("127.0.0.1:0")
	defer srv.Shutdown(context.Background())

	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr.String()+"/shout", nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("quiet"))
	_, p, _ := c.ReadMessage()
	fmt.Println(string(p))
	// Output: QUIET
}

// WebSocket routes mounted in an existing mux, behind middleware that can
// refuse the upgrade.
func ExampleServer_mount() {
	router := api.NewRouter()
	router.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("token") != "t0k3n" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	router.Handle("/ws/echo", func(ws api.Conn) {
		m, _ := ws.Receive()
		ws.Send(m)
	})
	wsrv, _ := stdhttp.New(router, api.Options{})
	defer wsrv.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.Handle("/ws/", wsrv)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	hs := httptest.NewServer(mux)
	defer hs.Close()

	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws/echo"
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	fmt.Println(err != nil, resp.StatusCode)
	c, _, err := websocket.DefaultDialer.Dial(url+"?token=t0k3n", nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	typ, p, _ := c.ReadMessage()
	fmt.Println(typ == websocket.BinaryMessage, p)
	// Output:
	// true 401
	// true [1 2 3]
}
