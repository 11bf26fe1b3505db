package conn

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A well-behaved client that streams messages faster than its handler
// takes them (TCP backpressure holds the rest in the kernel) when the
// server closes (Shutdown's 1001): it stops at our close frame and answers
// it. What the kernel buffers held is read after the close began; with
// ReadLimit 64 KiB (InboxBytes 1 MiB), the budget is about 1 MiB, and the
// peer is cut instead of completing the close handshake.
func TestBackpressuredPeerIsNotCutAtServerClose(t *testing.T) {
	var logs syncBuf
	o := api.Options{PingInterval: api.Disabled, ReadLimit: 64 << 10,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	s := newTestServer(t, o)
	release := make(chan struct{})
	client, c := tcpConn(t, s, nil, func(ws api.Conn) {
		<-release // busy: takes nothing
	})
	defer close(release)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		frame := clientFrame(ws.OpBinary, make([]byte, 16<<10))
		for {
			select {
			case <-stop:
				client.Write(clientFrame(ws.OpClose, []byte{0x03, 0xe9}))
				return
			default:
			}
			client.SetWriteDeadline(time.Now().Add(3 * time.Second))
			if _, err := client.Write(frame); err != nil {
				return
			}
		}
	})
	time.Sleep(500 * time.Millisecond) // the kernel buffers fill
	c.closeWith(api.StatusGoingAway, "server shutting down")
	// The client reads until our close frame, then stops writing and answers.
	gotClose := false
	client.SetReadDeadline(time.Now().Add(3 * time.Second))
	for !gotClose {
		f, err := ws.ReadFrame(client)
		if err != nil {
			t.Logf("client read: %v", err)
			break
		}
		gotClose = f.Header.OpCode == ws.OpClose
	}
	close(stop)
	wg.Wait()
	<-c.endedCh()
	if strings.Contains(logs.String(), "cut") {
		t.Fatalf("the peer was cut, not closed cleanly (got our close frame: %v):\n%s", gotClose, grepLines(logs.String(), "cut"))
	}
}

func grepLines(s, w string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, w) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
