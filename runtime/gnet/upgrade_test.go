package gnet

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
)

// A client may send frames as soon as it reads the 101: frames that
// arrive before the upgrading goroutine hands the connection to the loop
// are kept (up to the connection's own budget), not cut by the bound on
// what may come before the answer. The connection was closed when a 64 KiB
// frame came in that window (kit bounds/pipelining_peer_that_reads_is_never_cut
// failed with EOF under CPU contention).
func TestFramesRightAfterThe101AreKept(t *testing.T) {
	testHookBeforeRun = func() { time.Sleep(100 * time.Millisecond) }
	defer func() { testHookBeforeRun = nil }()
	r := api.NewRouter()
	r.Handle("/echo", handlers.Echo)
	s, err := New(r, api.Options{}, WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	nc, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	io.WriteString(nc, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	const n, size = 4, 64 << 10
	var frames bytes.Buffer
	for range n {
		ws.WriteHeader(&frames, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: size, Masked: true})
		frames.Write(make([]byte, size)) // zero mask: the payload as is
	}
	go func() {
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		nc.Write(frames.Bytes())
	}()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		p, op, err := wsutil.ReadServerData(struct {
			io.Reader
			io.Writer
		}{br, nc})
		if err != nil || op != ws.OpBinary || len(p) != size {
			t.Fatalf("echo %d: %v, %d bytes, %v", i, op, len(p), err)
		}
	}
}
