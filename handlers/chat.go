package handlers

import (
	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/hub"
)

// Chat returns a handler for routes with a {room} path value, such as
// "/chat/{room}": each connection joins that room of h, and every message
// it sends goes to every member of the room — the sender included, in
// every process on h's backplane — in the order h delivers them. Event
// style: a member holds no goroutine while idle.
func Chat(h *hub.Hub) api.Handler {
	return func(ws api.Conn) {
		serveRoom(h, ws, ws.Request().PathValue("room"))
	}
}

// Room is Chat for one fixed room: every message any of its connections
// sends goes to all of them (the sender included).
func Room(h *hub.Hub, room string) api.Handler {
	return func(ws api.Conn) { serveRoom(h, ws, room) }
}

func serveRoom(h *hub.Hub, ws api.Conn, room string) {
	if room == "" {
		ws.Close(api.StatusPolicyViolation, "no room")
		return
	}
	h.Attach(ws).Join(room)
	to := h.To(room)
	ws.OnMessage(func(m api.Message) {
		to.Send(m)
		m.Release() // Send copied it
	})
}
