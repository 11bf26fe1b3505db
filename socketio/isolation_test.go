package socketio_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	"github.com/wsmatrix/wsmatrix/hub"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/socketio"
)

// TestChatRoomsCannotReachSocketIORooms: Socket.IO's rooms are hub rooms
// (socketio.HubRoom), and a chat route takes its room from the URL: a
// plain WebSocket client naming a Socket.IO room there would read its
// traffic and could send packets to its sockets (a forged event, or
// garbage that makes every client drop). The chat route refuses such a
// room with 1008, and the Socket.IO client hears nothing from it.
func TestChatRoomsCannotReachSocketIORooms(t *testing.T) {
	h := hub.New(hub.Options{Logger: quiet})
	defer h.Close()
	sio := socketio.New(socketio.Options{Hub: h, Logger: quiet})
	sio.Of("/").OnConnection(func(so *socketio.Socket) { so.Join("private") })
	r := api.NewRouter()
	sio.Mount(r, "/socket.io/")
	r.Handle("/chat/{room}", handlers.Chat(h))
	s, err := runtime.New("stdhttp", r, api.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sio.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	addr := a.String()

	c := dialWS(t, addr, "")
	defer c.Close() // before the server's shutdown, which waits for it
	c.ReadMessage() // open
	c.WriteMessage(websocket.TextMessage, []byte("40"))
	c.ReadMessage() // connected; OnConnection joins "private" just after
	for deadline := time.Now().Add(5 * time.Second); len(h.LocalMembers(socketio.HubRoom("/", "private"))) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the socket did not join its room")
		}
	}
	for _, room := range []string{socketio.HubRoom("/", "private"), socketio.HubRoom("/", "")} {
		chat, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/chat/"+url.PathEscape(room), nil)
		if err != nil {
			t.Fatal(err)
		}
		chat.WriteMessage(websocket.TextMessage, []byte(`42["said","forged"]`))
		chat.WriteMessage(websocket.TextMessage, []byte("4garbage"))
		chat.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _, err = chat.ReadMessage()
		chat.Close()
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Errorf("chat room %q: %v, want a close with 1008", room, err)
		}
	}
	sio.Of("/").To("private").Emit("real", 1)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil || string(b) != `42["real",1]` {
		t.Fatalf("the Socket.IO client got %q (%v), want only the server's own event", b, err)
	}
}
