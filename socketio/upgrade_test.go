package socketio_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/socketio"
)

// splitPayload splits a polling payload into its packets.
func splitPayload(s string) []string { return strings.Split(s, "\x1e") }

// emittingServer serves rt with sockets that emit without pause,
// emit(so, 0), emit(so, 1), ..., until the test ends or an emit fails.
func emittingServer(t *testing.T, rt string, emit func(so *socketio.Socket, i int) error) (addr string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	_, addr = start(t, rt, socketio.Options{MaxBufferedBytes: 64 << 20}, func(s *socketio.Server) {
		s.Of("/").OnConnection(func(so *socketio.Socket) {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if emit(so, i) != nil {
						return
					}
					if i%50 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			})
		})
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return addr
}

// upgradeRound connects a polling client and upgrades it as
// socket.io-client does (probe, the poll that pauses polling, then "5"),
// while the server emits. It gives take every packet in the order it
// came, polled or on the WebSocket, and whether it is binary (a polled
// one is "b" and base64), until take wants no more.
func upgradeRound(t *testing.T, addr string, take func(binary bool, pk string) (more bool)) {
	p := handshake(t, addr)
	p.post("40")
	poll := func() {
		for _, pk := range splitPayload(p.poll()) {
			take(strings.HasPrefix(pk, "b"), pk)
		}
	}
	poll()
	c := dialWS(t, addr, "&sid="+p.sid)
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("2probe"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != "3probe" {
		t.Fatalf("probe: %q %v", b, err)
	}
	poll()                           // the poll that pauses polling
	time.Sleep(5 * time.Millisecond) // the queue fills while the client pauses
	c.WriteMessage(websocket.TextMessage, []byte("5"))
	for more := true; more; {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ == websocket.BinaryMessage {
			more = take(true, fmt.Sprintf("<bin %x>", b))
		} else {
			more = take(false, string(b))
		}
	}
}

// TestUpgradeKeepsOrder: the server emits numbered events without
// pause while a polling client upgrades the way socket.io-client does
// (probe, a poll that returns, then "5"). Every number must arrive once,
// in order, across both transports.
func TestUpgradeKeepsOrder(t *testing.T) {
	for _, rt := range rts {
		t.Run(rt, func(t *testing.T) {
			addr := emittingServer(t, rt, func(so *socketio.Socket, i int) error { return so.Emit("n", i) })
			bad := 0
			for round := 0; round < 6 && bad == 0; round++ {
				var got []int
				upgradeRound(t, addr, func(_ bool, pk string) bool {
					if strings.HasPrefix(pk, `42["n",`) {
						n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(pk, `42["n",`), "]"))
						got = append(got, n)
					}
					return len(got) < 1000
				})
				for i := 1; i < len(got); i++ {
					if got[i] != got[i-1]+1 {
						t.Errorf("round %d: after %d came %d (index %d of %d)", round, got[i-1], got[i], i, len(got))
						bad++
						if bad > 5 {
							break
						}
					}
				}
			}
		})
	}
}

// TestAttachmentStaysBehindItsHeaderAcrossUpgrade: binary events emitted
// while the client upgrades; a binary frame must never come before the
// header (451-...) it belongs to, or socket.io-client's decoder throws
// "got binary data when not reconstructing a packet".
func TestAttachmentStaysBehindItsHeaderAcrossUpgrade(t *testing.T) {
	for _, rt := range rts {
		t.Run(rt, func(t *testing.T) {
			addr := emittingServer(t, rt, func(so *socketio.Socket, i int) error { return so.Emit("b", []byte{byte(i)}) })
			bad := 0
			for round := 0; round < 6 && bad == 0; round++ {
				expectBin, onWS := false, 0
				upgradeRound(t, addr, func(isBin bool, pk string) bool {
					if !strings.HasPrefix(pk, "<bin") && !strings.HasPrefix(pk, "b") && !strings.HasPrefix(pk, "45") {
						return true // not a binary event's part (a ping, an ack)
					}
					if strings.HasPrefix(pk, "<bin") {
						onWS++
					}
					if isBin != expectBin {
						if bad < 3 {
							t.Errorf("round %d: %s when expecting binary=%v", round, pk, expectBin)
						}
						bad++
					}
					expectBin = !isBin && strings.HasPrefix(pk, "451-")
					return onWS < 1000
				})
			}
		})
	}
}
