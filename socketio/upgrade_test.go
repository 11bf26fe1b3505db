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

// TestUpgradeKeepsOrder: the server emits numbered events without
// pause while a polling client upgrades the way socket.io-client does
// (probe, a poll that returns, then "5"). Every number must arrive once,
// in order, across both transports.
func TestUpgradeKeepsOrder(t *testing.T) {
	for _, rt := range rts {
		t.Run(rt, func(t *testing.T) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			_, addr := start(t, rt, socketio.Options{MaxBufferedBytes: 64 << 20}, func(s *socketio.Server) {
				s.Of("/").OnConnection(func(so *socketio.Socket) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							if so.Emit("n", i) != nil {
								return
							}
							if i%50 == 0 {
								time.Sleep(time.Millisecond)
							}
						}
					}()
				})
			})
			defer func() { close(stop); wg.Wait() }()
			bad := 0
			for round := 0; round < 6 && bad == 0; round++ {
				p := handshake(t, addr)
				p.post("40")
				var got []int
				take := func(pk string) {
					if strings.HasPrefix(pk, `42["n",`) {
						n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(pk, `42["n",`), "]"))
						got = append(got, n)
					}
				}
				for _, pk := range splitPayload(p.poll()) {
					take(pk)
				}
				c := dialWS(t, addr, "&sid="+p.sid)
				c.WriteMessage(websocket.TextMessage, []byte("2probe"))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, b, err := c.ReadMessage(); err != nil || string(b) != "3probe" {
					t.Fatalf("probe: %q %v", b, err)
				}
				for _, pk := range splitPayload(p.poll()) { // the poll that pauses polling
					take(pk)
				}
				time.Sleep(5 * time.Millisecond) // the queue fills while the client pauses
				c.WriteMessage(websocket.TextMessage, []byte("5"))
				for len(got) < 1000 {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, b, err := c.ReadMessage()
					if err != nil {
						t.Fatal(err)
					}
					take(string(b))
				}
				c.Close()
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
			stop := make(chan struct{})
			var wg sync.WaitGroup
			_, addr := start(t, rt, socketio.Options{MaxBufferedBytes: 64 << 20}, func(s *socketio.Server) {
				s.Of("/").OnConnection(func(so *socketio.Socket) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							if so.Emit("b", []byte{byte(i)}) != nil {
								return
							}
							if i%50 == 0 {
								time.Sleep(time.Millisecond)
							}
						}
					}()
				})
			})
			defer func() { close(stop); wg.Wait() }()
			bad := 0
			for round := 0; round < 6 && bad == 0; round++ {
				p := handshake(t, addr)
				p.post("40")
				expectBin := false
				check := func(isBin bool, what string) {
					if isBin != expectBin {
						if bad < 3 {
							t.Errorf("round %d: %s when expecting binary=%v", round, what, expectBin)
						}
						bad++
					}
					expectBin = !isBin && strings.HasPrefix(what, "451-")
				}
				poll := func() {
					for _, pk := range splitPayload(p.poll()) {
						if strings.HasPrefix(pk, "b") {
							check(true, pk)
						} else if strings.HasPrefix(pk, "45") {
							check(false, pk)
						}
					}
				}
				poll()
				c := dialWS(t, addr, "&sid="+p.sid)
				c.WriteMessage(websocket.TextMessage, []byte("2probe"))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.ReadMessage()
				poll()
				time.Sleep(5 * time.Millisecond)
				c.WriteMessage(websocket.TextMessage, []byte("5"))
				for range 1000 {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					typ, b, err := c.ReadMessage()
					if err != nil {
						t.Fatal(err)
					}
					if typ == websocket.BinaryMessage {
						check(true, fmt.Sprintf("<bin %x>", b))
					} else if strings.HasPrefix(string(b), "45") {
						check(false, string(b))
					}
				}
				c.Close()
			}
		})
	}
}
