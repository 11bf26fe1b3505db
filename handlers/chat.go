package handlers

import (
	"strings"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/hub"
)

// Chat returns a handler for routes with a {room} path value, such as
// "/chat/{room}": each connection joins that room of h, and every message
// it sends goes to every member of the room — the sender included, in
// every process on h's backplane — in the order h delivers them. Event
// style: a member holds no goroutine while idle.
//
// A room named in the URL may not be one of Socket.IO's (socketio.HubRoom:
// "socket.io:" and the namespace): its member would read that room's
// packets and could send its sockets forged or malformed ones. Such a
// connection is closed with 1008.
func Chat(h *hub.Hub) api.Handler {
	return func(ws api.Conn) {
		room := ws.Request().PathValue("room")
		if strings.HasPrefix(room, socketIORooms) {
			ws.Close(api.StatusPolicyViolation, "room reserved for Socket.IO")
			return
		}
		serveRoom(h, ws, room)
	}
}

// socketIORooms begins the names of the hub rooms of Socket.IO's
// namespaces and rooms (socketio.HubRoom, which a test holds to it).
const socketIORooms = "socket.io:"

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
