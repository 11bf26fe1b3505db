package conn

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// TestCompressedAtLimitArrivingInPieces (from a review): a compressed
// message of ReadLimit that takes a few bytes more on the wire (deflate's
// stored blocks, which the parser allows) arrives when its bytes past
// ReadLimit+1 come in a later read: the reader paused at ReadLimit+1,
// mustPause's bound for a waiting handler, and nothing resumed it.
func TestCompressedAtLimitArrivingInPieces(t *testing.T) {
	o := quiet()
	o.ReadLimit = 64 << 10
	o.InboxBytes = 16 << 10
	s := newTestServer(t, o)
	client, server := tcpPair(t)
	defer client.Close()
	defer server.Close()
	dfl := s.deflaterFor(wire.Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerWindowBits: 15, ClientWindowBits: 15})
	c := serverConn(s, NetTransport(server, 10*time.Second), dfl)
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

	msg, frame, cut := compressedPastTheLimit(t, o.ReadLimit)
	client.Write(frame[:cut])
	time.Sleep(300 * time.Millisecond)
	client.Write(frame[cut:])
	select {
	case n := <-got:
		if n != len(msg) {
			t.Fatalf("received %d, want %d", n, len(msg))
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("a compressed message of ReadLimit (a %d-byte frame) never arrived: paused=%v len(c.msg)=%d", len(frame), c.flags.has(paused), len(c.msg))
	}
}

// TestCompressedAtLimitOnAnEventLoop (from a review): the same message
// fed as an event loop feeds it (what it has buffered, then the rest)
// arrives; Feed paused with ReadLimit+1 bytes of it and was never resumed.
func TestCompressedAtLimitOnAnEventLoop(t *testing.T) {
	o := quiet()
	o.ReadLimit = 64 << 10
	o.InboxBytes = 16 << 10
	s := newTestServer(t, o)
	f := newSocketFake(1 << 20)
	dfl := s.deflaterFor(wire.Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerWindowBits: 15, ClientWindowBits: 15})
	c := serverConn(s, f, dfl)
	defer c.Gone(errTest)
	got := make(chan int, 1)
	c.OnMessage(func(m api.Message) { got <- len(m.Data) })
	msg, frame, cut := compressedPastTheLimit(t, o.ReadLimit)
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

// compressedPastTheLimit is a client's frame of limit random bytes
// compressed (in stored blocks, a few bytes longer than limit), the
// message, and where the frame holds limit+1 bytes of payload.
func compressedPastTheLimit(t *testing.T, limit int64) (msg, frame []byte, cut int) {
	t.Helper()
	msg = make([]byte, limit)
	rand.Read(msg)
	payload := wire.Compress(nil, msg, 0, 15, nil)
	if len(payload) <= int(limit)+1 || len(payload) > int(limit+wire.DeflateSlack(limit)) {
		t.Fatalf("the compressed message (%d bytes) is not in the slack", len(payload))
	}
	var b bytes.Buffer
	mask := ws.NewMask()
	ws.WriteHeader(&b, ws.Header{Fin: true, Rsv: ws.Rsv(true, false, false), OpCode: ws.OpBinary, Length: int64(len(payload)), Masked: true, Mask: mask})
	hl := b.Len()
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	b.Write(p)
	return msg, b.Bytes(), hl + int(limit) + 1
}
