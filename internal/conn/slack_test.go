package conn

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// TestCompressedAtLimitArrivingInPieces: deflateSlack lets the parser
// take a compressed message of ReadLimit (+ a few bytes of stored blocks);
// mustPause's bound for a waiting handler is ReadLimit+1, so when the
// compressed bytes past ReadLimit+1 arrive in a later read the reader
// pauses and nothing resumes it.
func TestCompressedAtLimitArrivingInPieces(t *testing.T) {
	o := quiet()
	o.ReadLimit = 64 << 10
	o.InboxBytes = 16 << 10
	s := newTestServer(t, o)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	s.admit()
	r := httptest.NewRequest(http.MethodGet, "/t", nil)
	dfl := s.deflaterFor(wire.Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerWindowBits: 15, ClientWindowBits: 15})
	c := s.newConnAdmitted(NetTransport(server, 10*time.Second), r, 0, netip.MustParseAddrPort("127.0.0.1:1"), dfl, nil)
	c.Attach(server, nil)
	got := make(chan int, 1)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		c.Run(func(ws api.Conn) {
			m, err := ws.Receive()
			if err != nil {
				got <- -1
				return
			}
			got <- len(m.Data)
		})
	}()
	defer func() {
		client.Close()
		server.Close()
		c.Gone(errTest)
		select {
		case <-ran:
		case <-time.After(2 * time.Second):
			t.Error("the handler still waits 2 s after its socket closed (the reader is stuck paused)")
		}
	}()

	msg := make([]byte, o.ReadLimit)
	rand.Read(msg)
	payload := wire.Compress(nil, msg, 0, 15, nil)
	t.Logf("%d bytes compressed to %d (limit %d, slack %d)", len(msg), len(payload), o.ReadLimit, o.ReadLimit>>10+64)
	if len(payload) <= int(o.ReadLimit)+1 || len(payload) > int(o.ReadLimit+o.ReadLimit>>10+64) {
		t.Fatalf("the compressed message (%d bytes) is not in the slack", len(payload))
	}
	var b bytes.Buffer
	mask := ws.NewMask()
	ws.WriteHeader(&b, ws.Header{Fin: true, Rsv: ws.Rsv(true, false, false), OpCode: ws.OpBinary, Length: int64(len(payload)), Masked: true, Mask: mask})
	hl := b.Len()
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	b.Write(p)
	frame := b.Bytes()
	cut := hl + int(o.ReadLimit) + 1 // the message so far: ReadLimit+1 bytes
	client.Write(frame[:cut])
	time.Sleep(300 * time.Millisecond)
	client.Write(frame[cut:])
	select {
	case n := <-got:
		if n != len(msg) {
			t.Fatalf("received %d, want %d", n, len(msg))
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("a compressed message of ReadLimit (%d bytes on the wire) never arrived: paused=%v len(c.msg)=%d", len(payload), c.paused.Load(), len(c.msg))
	}
}

// TestRevCompressedAtLimitOnAnEventLoop: the same message fed as an event
// loop feeds it (what it has buffered, then the rest): Feed pauses with
// ReadLimit+1 bytes of it and is never resumed (a larger rest, reported
// with Unparsed past ReadBufferSize, would be taken for a flood: 1008).
func TestRevCompressedAtLimitOnAnEventLoop(t *testing.T) {
	o := quiet()
	o.ReadLimit = 64 << 10
	o.InboxBytes = 16 << 10
	s := newTestServer(t, o)
	f := newSocketFake(1 << 20)
	s.admit()
	r := httptest.NewRequest(http.MethodGet, "/t", nil)
	dfl := s.deflaterFor(wire.Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerWindowBits: 15, ClientWindowBits: 15})
	c := s.newConnAdmitted(f, r, 0, netip.MustParseAddrPort("127.0.0.1:1"), dfl, nil)
	defer c.Gone(errTest)
	got := make(chan int, 1)
	c.OnMessage(func(m api.Message) { got <- len(m.Data) })
	msg := make([]byte, o.ReadLimit)
	rand.Read(msg)
	payload := wire.Compress(nil, msg, 0, 15, nil)
	if len(payload) <= int(o.ReadLimit)+1 || len(payload) > int(o.ReadLimit+o.ReadLimit>>10+64) {
		t.Fatalf("the compressed message (%d bytes) is not in the slack", len(payload))
	}
	var b bytes.Buffer
	mask := ws.NewMask()
	ws.WriteHeader(&b, ws.Header{Fin: true, Rsv: ws.Rsv(true, false, false), OpCode: ws.OpBinary, Length: int64(len(payload)), Masked: true, Mask: mask})
	hl := b.Len()
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	b.Write(p)
	frame := b.Bytes()
	cut := hl + int(o.ReadLimit) + 1
	used, paused := c.Feed(frame[:cut])
	t.Logf("fed %d of %d: used %d, paused %v", cut, len(frame), used, paused)
	if paused {
		c.Unparsed(len(frame) - cut)
	} else {
		c.Feed(frame[cut:])
	}
	select {
	case n := <-got:
		if n != len(msg) {
			t.Fatalf("received %d, want %d", n, len(msg))
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("a compressed message of ReadLimit never arrived: paused %v, state %v", paused, c.state)
	}
}
