package socketio_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/hub"
	"github.com/wsmatrix/wsmatrix/socketio"
)

// TestSlowWebSocketClientDoesNotStallTheHub: a Socket.IO client on WebSocket
// that stops reading. Its heartbeat ping now goes out under the session's
// sendMu (sendAlone, a53ee4a) and waits in ws.Send up to WriteTimeout for
// room (QueueBlock, the default); the hub's one delivery loop, delivering
// a broadcast to that socket, waits for sendMu all that time, and every
// other client of the process gets nothing meanwhile (DESIGN contract 8).
// At fbbd4c4 the ping was sent without sendMu and the broadcast went
// through at once.
func TestSlowWebSocketClientDoesNotStallTheHub(t *testing.T) {
	h := hub.New(hub.Options{Logger: quiet}) // CloseSlow, the default
	defer h.Close()
	const writeTimeout = 4 * time.Second
	sio, addr := startWith(t, "stdhttp", socketio.Options{Hub: h, PingInterval: 300 * time.Millisecond, PingTimeout: 30 * time.Second},
		api.Options{SendQueueBytes: 64 << 10, WriteTimeout: writeTimeout}, func(sio *socketio.Server) {
			sio.Of("/").OnConnection(func(so *socketio.Socket) {
				if so.Request().URL.Query().Get("role") == "slow" {
					so.Join("slow")
				}
			})
		})
	connect := func(role string) *websocket.Conn {
		d := *websocket.DefaultDialer
		d.NetDial = func(network, a string) (net.Conn, error) {
			c, err := net.Dial(network, a)
			if err == nil && role == "slow" {
				c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		}
		c, _, err := d.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket&role="+role, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.ReadMessage() // open
		c.WriteMessage(websocket.TextMessage, []byte("40"))
		c.ReadMessage() // connect
		return c
	}
	connect("slow") // reads nothing from now on
	fast := connect("fast")
	got := make(chan string, 64)
	go func() {
		for {
			fast.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, b, err := fast.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			if string(b) == "2" {
				fast.WriteMessage(websocket.TextMessage, []byte("3"))
				continue
			}
			got <- string(b)
		}
	}()
	// More than the slow client's socket takes: the rest waits in its
	// queue, over SendQueueBytes, and its next ping waits for room.
	sio.Of("/").To("slow").Emit("fill", strings.Repeat("x", 8<<20))
	time.Sleep(time.Second)
	// Two broadcasts: the hub's loop goes through members in map order,
	// so the first may reach the fast client before it blocks on the slow
	// one; the second waits behind it.
	start := time.Now()
	sio.Of("/").Emit("tick", 1)
	sio.Of("/").Emit("tick", 2)
	for range 2 {
		select {
		case _, ok := <-got:
			if !ok {
				t.Fatal("the fast client's connection ended")
			}
		case <-time.After(2 * writeTimeout):
			t.Fatal("the broadcasts never reached the fast client")
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("two broadcasts took %v to reach a client that reads, behind one that does not (WriteTimeout %v)", took, writeTimeout)
	}
}
