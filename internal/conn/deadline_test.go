package conn

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/api"
)

// TestBlockingWriteLeavesNoDeadline: a write that had to wait for the
// peer (a large message, written by the flusher with WriteTimeout as its
// deadline) leaves no deadline behind: the next write, however much later,
// goes out. The deadline stayed on the socket, and the first write without
// waiting after it had passed failed with "i/o timeout", cutting a peer
// that had read everything (with the default 10 s WriteTimeout, the next
// keepalive ping did).
func TestBlockingWriteLeavesNoDeadline(t *testing.T) {
	o := quiet()
	o.WriteTimeout = 300 * time.Millisecond
	s := newTestServer(t, o)
	sent := make(chan error, 2)
	next := make(chan struct{})
	client, _ := tcpConn(t, s, nil, func(c api.Conn) {
		sent <- c.SendBinary(make([]byte, 8<<20)) // more than the socket takes at once
		<-next
		sent <- c.SendText("after")
		c.Receive()
	})
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := wsutil.ReadServerBinary(client); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * o.WriteTimeout) // the deadline of the last waiting write passes
	close(next)
	if err := <-sent; err != nil {
		t.Fatalf("Send after a while: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	p, op, err := wsutil.ReadServerData(client)
	if err != nil || op != ws.OpText || string(p) != "after" {
		t.Fatalf("the next message: %v %q %v (the connection was cut)", op, p, err)
	}
}
