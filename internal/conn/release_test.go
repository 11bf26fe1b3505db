package conn

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/api"
)

// TestReleasedMessageAllocatesOnlyItsPlaceInTheInbox: a blocking handler
// that releases each message once it has sent it back takes the next
// message's storage from the ones released: a message of 1 KiB read from
// the socket costs only its place in the inbox (2 allocations before:
// the data, the place). Under the race detector, whose sync.Pool drops
// some of what it is given, it counts in a run of its own without it.
func TestReleasedMessageAllocatesOnlyItsPlaceInTheInbox(t *testing.T) {
	if raceEnabled {
		runWithoutRace(t)
		return
	}
	n := echoAllocs(t, bytes.Repeat([]byte{'x'}, 1024), true)
	t.Logf("%.1f allocations a message", n)
	if n > 1 {
		t.Fatalf("%.1f allocations a released 1 KiB message, want 1 (its place in the inbox)", n)
	}
}

// TestKeptMessagesAreNeverReused: a handler that keeps some messages and
// releases the others finds what it kept unchanged however many messages
// came after, and the released storage is reused (so the test would see
// a kept message overwritten if storage were given out twice). Messages
// of one size, whole and fragmented (a fragmented message grows its
// buffer and gives the smaller one back), in both styles.
func TestKeptMessagesAreNeverReused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		event      bool
		fragmented bool
	}{{"blocking", false, false}, {"event", true, false}, {"blocking/fragmented", false, true}, {"event/fragmented", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const total, size = 300, 1000
			type kept struct {
				i    int
				data []byte
			}
			var keep []kept
			released := map[*byte]bool{}
			reused := 0
			done := make(chan struct{})
			i := 0
			take := func(m api.Message) {
				p := unsafe.SliceData(m.Data)
				if released[p] {
					reused++
					delete(released, p)
				}
				if i%3 == 0 {
					keep = append(keep, kept{i, m.Data})
				} else {
					released[p] = true
					m.Release()
				}
				if i++; i == total {
					close(done)
				}
			}
			s := newTestServer(t, quiet())
			client, _ := tcpConn(t, s, nil, func(c api.Conn) {
				if tc.event {
					c.OnMessage(take)
					c.OnClose(func(*api.CloseError) {})
					return
				}
				for {
					m, err := c.Receive()
					if err != nil {
						return
					}
					take(m)
				}
			})
			for n := range total {
				p := message(n, size)
				if !tc.fragmented {
					client.Write(clientFrame(ws.OpBinary, p))
					continue
				}
				var b bytes.Buffer
				for j, piece := range [][]byte{p[:10], p[10:300], p[300:]} {
					op := ws.OpContinuation
					if j == 0 {
						op = ws.OpBinary
					}
					writeClientFrame(&b, op, j == 2, piece)
				}
				client.Write(b.Bytes())
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("%d of %d messages taken", i, total)
			}
			for _, k := range keep {
				if !bytes.Equal(k.data, message(k.i, size)) {
					t.Fatalf("message %d, kept, changed after it was received", k.i)
				}
			}
			t.Logf("%d messages kept, %d took released storage", len(keep), reused)
			if reused == 0 {
				t.Fatal("no message took the storage of one released before")
			}
		})
	}
}

// message is message n of a test: size bytes that say n throughout.
func message(n, size int) []byte {
	p := make([]byte, size)
	for i := 0; i+4 <= size; i += 4 {
		binary.BigEndian.PutUint32(p[i:], uint32(n))
	}
	return p
}

// writeClientFrame writes a masked frame, fin or not.
func writeClientFrame(b *bytes.Buffer, op ws.OpCode, fin bool, payload []byte) {
	mask := ws.NewMask()
	ws.WriteHeader(b, ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: mask})
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	b.Write(p)
}
