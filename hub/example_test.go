package hub_test

import (
	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/hub"
)

// A chat room per path, and a push from outside any handler.
func Example() {
	h := hub.New(hub.Options{})
	defer h.Close()
	router := api.NewRouter()
	router.Handle("/chat/{room}", func(ws api.Conn) {
		room := ws.Request().PathValue("room")
		m := h.Attach(ws).Join(room)
		if user := ws.Request().Header.Get("X-User"); user != "" { // set by auth middleware
			m.SetUser(user)
		}
		ws.OnMessage(func(msg api.Message) {
			h.To(room).Except(m.ID()).Send(msg) // everyone else in the room
		})
	})
	// Anywhere else: a ticker, a webhook, another connection's handler.
	h.ToUser("alice").SendText("you have mail")
	h.To("lobby", "news").SendText("the build is green")
	// Output:
}

// Several processes share rooms through Redis; a process with no server
// emits to them.
func ExampleNewEmitter() {
	bp, err := hub.NewRedis("redis://127.0.0.1:6379", hub.RedisOptions{})
	if err != nil {
		panic(err)
	}
	e := hub.NewEmitter(bp)
	defer e.Close()
	_ = e.To("lobby").SendText("nightly report ready") // fails when Redis is away
}
