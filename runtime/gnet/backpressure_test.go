package gnet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/api"
)

// start serves the routes setup makes on loops event loops until the
// test ends; it returns the address.
func start(t *testing.T, o api.Options, loops int, setup func(r *api.Router), addr ...string) string {
	t.Helper()
	r := api.NewRouter()
	setup(r)
	s, err := New(r, o, WithLoops(loops))
	if err != nil {
		t.Fatal(err)
	}
	at := "127.0.0.1:0"
	if len(addr) > 0 {
		at = addr[0]
	}
	a, err := s.Start(at)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return a.String()
}

// TestFloodWhileHandlerDoesNotReceive: gnet cannot stop reading a socket,
// so a peer that sends faster than its handler receives is cut with 1008
// once the bound is passed, instead of growing server memory.
func TestFloodWhileHandlerDoesNotReceive(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := start(t, api.Options{InboxSize: 2}, 2, func(r *api.Router) {
		r.Handle("/deaf", func(ws api.Conn) { <-release })
	})
	nc, br := dialUpgrade(t, addr, "/deaf")
	defer nc.Close()
	var frame bytes.Buffer
	payload := make([]byte, 32<<10)
	ws.WriteHeader(&frame, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(len(payload)), Masked: true})
	frame.Write(payload) // zero mask: payload as is
	sent := make(chan int, 1)
	go func() {
		n := 0
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for n < 64<<20 {
			k, err := nc.Write(frame.Bytes())
			n += k
			if err != nil {
				break
			}
		}
		sent <- n
	}()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, err := ws.ReadHeader(br)
	if err != nil || h.OpCode != ws.OpClose {
		t.Fatalf("got %+v %v, want a close frame", h, err)
	}
	p := make([]byte, h.Length)
	io.ReadFull(br, p)
	if code := binary.BigEndian.Uint16(p); code != 1008 {
		t.Fatalf("close code %d %q, want 1008", code, p[2:])
	}
	nc.Close()
	if n := <-sent; n >= 64<<20 {
		t.Fatalf("the server took all %d bytes", n)
	}
}

// dialUpgrade opens a raw TCP connection to addr and upgrades it on path.
func dialUpgrade(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return nc, br
}

// TestSessionFitsItsSizeClass: every gnet connection holds a session; at
// 80 bytes it is allocated in the 80-byte size class (it was 96 while it
// held the input kept between reads as a slice rather than behind a
// pointer, 120, in 128, while it kept the loop's refusal as an error value,
// and 104, in 112, while it kept a pointer to the server that nothing
// read).
func TestSessionFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 80 {
		t.Fatalf("session is %d bytes, want at most 80", n)
	}
}
