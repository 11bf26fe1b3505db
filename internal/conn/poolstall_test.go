package conn

import (
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
)

// TestWaitingSendsDoNotHoldThePool: event-style callbacks that wait in
// Send for peers that read nothing do not hold back the callbacks of other
// connections: while a callback waits for room, the pool may start
// another worker in its place. With every worker waiting (up to
// WriteTimeout, 10 s by default), every other connection's messages
// waited too (an adversarial test: 8 s on stdhttp and fasthttp with 300
// such peers).
func TestWaitingSendsDoNotHoldThePool(t *testing.T) {
	o := quiet()
	o.Workers = 2
	o.SendQueueBytes = 64 << 10
	o.WriteTimeout = 5 * time.Second
	s := newTestServer(t, o)
	big := make([]byte, 1<<20)
	stall := func(c api.Conn) {
		c.OnMessage(func(api.Message) {
			for range 16 {
				if c.Send(api.BinaryMessage(big)) != nil {
					return
				}
			}
		})
	}
	small := func(tc *net.TCPConn) { tc.SetWriteBuffer(4096) }
	for range o.Workers {
		client, _ := tcpConnTuned(t, s, nil, small, stall)
		client.(*net.TCPConn).SetReadBuffer(4096)
		client.Write(clientFrame(ws.OpText, []byte("go"))) // and never reads
	}
	time.Sleep(300 * time.Millisecond) // both workers wait in Send
	probe, _ := tcpConn(t, s, nil, handlers.EchoEvent)
	start := time.Now()
	probe.Write(clientFrame(ws.OpText, []byte("still there?")))
	probe.SetReadDeadline(time.Now().Add(4 * time.Second))
	if _, err := wsutil.ReadServerText(probe); err != nil {
		t.Fatalf("no echo: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the echo took %v while %d callbacks waited in Send", d, o.Workers)
	}
}
