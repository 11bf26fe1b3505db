package socketio_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/socketio"
)

// TestOverflowClosesWithoutHoldingSendMu: pongs to posted pings
// are now sent with the session's sendMu held (sendAlone); when they
// overflow MaxBufferedBytes, send closes the session right there, and
// Socket.ended runs the application's OnDisconnect with sendMu still
// held. An OnDisconnect that emits on the session (here its own socket)
// then waits for sendMu for ever: the POST is never answered and the
// goroutine leaks.
func TestOverflowClosesWithoutHoldingSendMu(t *testing.T) {
	done := make(chan struct{})
	_, addr := start(t, "stdhttp", socketio.Options{MaxBufferedBytes: 2000}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			so.OnDisconnect(func(string) {
				so.Emit("bye") // errClosed at once, or a deadlock
				close(done)
			})
		})
	})
	p := handshake(t, addr)
	p.post("40")
	p.poll()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(p.base+"&sid="+p.sid, "text/plain", strings.NewReader(strings.Repeat("2\x1e", 3000)+"2"))
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("OnDisconnect never returned: Emit waits for the sendMu its own session holds")
	}
	<-answered
}
