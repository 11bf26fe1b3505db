package conn

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/api"
)

// tcpConn opens a real loopback TCP connection and attaches its server
// side to a connection of s, with handler h running as a runtime runs it.
func tcpConn(t *testing.T, s *Server, prefix []byte, h api.Handler) (client net.Conn, c *Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	s.admit()
	r := httptest.NewRequest(http.MethodGet, "/t", nil)
	c = s.newConnAdmitted(NetTransport(server, time.Second), r, "", netip.MustParseAddrPort("127.0.0.1:1"), nil, nil)
	c.Attach(server, prefix)
	go c.Run(h)
	return client, c
}

// A handler that reads its own socket and a helper that read while it was
// away hand the read role back and forth without losing a wake-up: a
// small inbox, a handler that starts late, 300 messages in one burst, every
// one echoed in order. Run many times: the hand-over races.
func TestDirectReadHandOver(t *testing.T) {
	for run := range 50 {
		s := newTestServer(t, api.Options{InboxSize: 2})
		release := make(chan struct{})
		// Half the runs start with frames read past the request, as a
		// runtime hands them over (a helper reads first then).
		var prefix []byte
		first := 0
		if run%2 == 1 {
			for ; first < 10; first++ {
				prefix = append(prefix, clientFrame(ws.OpText, []byte(strconv.Itoa(first)))...)
			}
		}
		client, c := tcpConn(t, s, prefix, func(ws api.Conn) {
			<-release
			for {
				m, err := ws.Receive()
				if err != nil {
					return
				}
				if ws.Send(m) != nil {
					return
				}
			}
		})
		const n = 300
		go func() {
			for i := first; i < n; i++ {
				client.Write(clientFrame(ws.OpText, []byte(strconv.Itoa(i))))
			}
		}()
		time.Sleep(time.Duration(run%5) * 15 * time.Millisecond)
		close(release)
		for i := range n {
			client.SetReadDeadline(time.Now().Add(3 * time.Second))
			p, err := wsutil.ReadServerText(client)
			if err != nil || string(p) != strconv.Itoa(i) {
				c.mu.Lock()
				state := fmt.Sprintf("paused=%v inN=%d waiting=%d inbox=%d state=%d yield=%v helping=%v space=%d n=%d",
					c.paused.Load(), c.inN.Load(), c.waiting.Load(), c.inbox.len(), c.state, c.rd.yield.Load(), c.rd.helping.Load(), len(c.rd.space), c.rd.n)
				c.mu.Unlock()
				t.Fatalf("run %d, message %d: %q, %v (%s)", run, i, p, err, state)
			}
		}
		client.Close()
	}
}
