package runtimetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

func connCases() []testCase {
	return []testCase{
		{"conn/receive_timeout_keeps_connection", func(t *testing.T, k *kit) {
			res := make(chan string, 4)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/t", func(ws api.Conn) {
					_, err := ws.ReceiveTimeout(100 * time.Millisecond)
					if !errors.Is(err, api.ErrTimeout) {
						res <- fmt.Sprintf("first: %v", err)
						return
					}
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						res <- "ErrTimeout is not a net.Error timeout"
						return
					}
					ws.SendText("timed out")
					m, err := ws.ReceiveTimeout(5 * time.Second)
					if err != nil {
						res <- fmt.Sprintf("second: %v", err)
						return
					}
					ws.Send(m)
					res <- "ok"
				})
			})
			c := dial(t, s.addr, "/t")
			c.expectMessage(ws.OpText, []byte("timed out"))
			c.text("after")
			c.expectMessage(ws.OpText, []byte("after"))
			if r := within(t, 5*time.Second, res, "handler"); r != "ok" {
				t.Fatal(r)
			}
			c.finishClose(api.StatusNormalClosure)
		}},
		{"conn/receive_context_cancel_keeps_connection", func(t *testing.T, k *kit) {
			res := make(chan error, 1)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/t", func(ws api.Conn) {
					ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
					defer cancel()
					if _, err := ws.ReceiveContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
						res <- fmt.Errorf("got %v, want DeadlineExceeded", err)
						return
					}
					m, err := ws.Receive()
					if err == nil {
						err = ws.Send(m)
					}
					res <- err
				})
			})
			c := dial(t, s.addr, "/t")
			time.Sleep(150 * time.Millisecond)
			c.text("x")
			c.expectMessage(ws.OpText, []byte("x"))
			if err := within(t, 5*time.Second, res, "handler"); err != nil {
				t.Fatal(err)
			}
		}},
		{"conn/receive_poll_with_zero_timeout", func(t *testing.T, k *kit) {
			res := make(chan error, 1)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/t", func(ws api.Conn) {
					if _, err := ws.ReceiveTimeout(0); !errors.Is(err, api.ErrTimeout) {
						res <- fmt.Errorf("empty poll: %v", err)
						return
					}
					ws.SendText("ready")
					for {
						m, err := ws.ReceiveTimeout(0)
						if err == nil {
							res <- ws.Send(m)
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
				})
			})
			c := dial(t, s.addr, "/t")
			c.expectMessage(ws.OpText, []byte("ready"))
			c.text("polled")
			c.expectMessage(ws.OpText, []byte("polled"))
			if err := within(t, 5*time.Second, res, "handler"); err != nil {
				t.Fatal(err)
			}
		}},
		{"conn/concurrent_sends_never_interleave", func(t *testing.T, k *kit) {
			const senders, each = 50, 40
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/s", func(ws api.Conn) {
					var wg sync.WaitGroup
					for g := range senders {
						wg.Go(func() {
							for i := range each {
								// Sizes vary across the 7-bit, 16-bit and 64-bit length forms.
								size := []int{10, 200, 70000}[(g+i)%3]
								p := bytes.Repeat([]byte{byte(g)}, size)
								copy(p, fmt.Sprintf("%02d:%03d:", g, i))
								if ws.SendBinary(p) != nil {
									return
								}
							}
						})
					}
					wg.Wait()
					ws.SendText("done")
					ws.Receive()
				})
			})
			c := dial(t, s.addr, "/s")
			next := make([]int, senders)
			for n := 0; ; n++ {
				f := c.next()
				if f.h.OpCode == ws.OpText {
					if string(f.payload) != "done" || n != senders*each {
						t.Fatalf("got %q after %d messages, want done after %d", f.payload, n, senders*each)
					}
					break
				}
				var g, i int
				if _, err := fmt.Sscanf(string(f.payload[:7]), "%02d:%03d:", &g, &i); err != nil {
					t.Fatalf("message %d malformed: %q", n, trunc(f.payload))
				}
				for _, b := range f.payload[7:] {
					if b != byte(g) {
						t.Fatalf("message %d from sender %d holds a foreign byte: frames interleaved", n, g)
					}
				}
				if i != next[g] {
					t.Fatalf("sender %d: message %d arrived when %d was expected: order lost", g, i, next[g])
				}
				next[g]++
			}
		}},
		{"conn/handler_return_closes_1000", func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/r", func(ws api.Conn) { ws.SendText("bye") })
			})
			c := dial(t, s.addr, "/r")
			c.expectMessage(ws.OpText, []byte("bye"))
			c.finishClose(api.StatusNormalClosure)
		}},
		{"conn/server_close_code_and_reason", func(t *testing.T, k *kit) {
			res := make(chan error, 1)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/r", func(ws api.Conn) {
					for i := range 3 {
						ws.SendText(strconv.Itoa(i))
					}
					res <- ws.Close(4000, "custom bye")
					_, err := ws.Receive()
					res <- err
				})
			})
			c := dial(t, s.addr, "/r")
			for i := range 3 {
				c.expectMessage(ws.OpText, []byte(strconv.Itoa(i))) // sent before Close: delivered first
			}
			if reason := c.expectClose(4000); reason != "custom bye" {
				t.Fatalf("reason %q", reason)
			}
			c.closeFrame(4000, "")
			c.expectEOF()
			if err := within(t, 5*time.Second, res, "Close"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			var ce *api.CloseError
			if err := within(t, 5*time.Second, res, "Receive"); !errors.As(err, &ce) {
				t.Fatalf("Receive after Close: %v", err)
			}
		}},
		{"conn/close_without_peer_answer_is_bounded", func(t *testing.T, k *kit) {
			o := testOptions()
			o.CloseTimeout = 300 * time.Millisecond
			res := make(chan time.Duration, 1)
			s := k.serve(o, func(r *api.Router) {
				r.Handle("/r", func(ws api.Conn) {
					start := time.Now()
					ws.Close(api.StatusNormalClosure, "")
					res <- time.Since(start)
				})
			})
			c := dial(t, s.addr, "/r")
			c.expectClose(api.StatusNormalClosure) // and never answer
			if d := within(t, 5*time.Second, res, "Close"); d > 3*time.Second {
				t.Fatalf("Close waited %v with CloseTimeout %v", d, o.CloseTimeout)
			}
			c.expectEOF()
		}},
		{"conn/close_invalid_code_refused", func(t *testing.T, k *kit) {
			res := make(chan error, 3)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/r", func(ws api.Conn) {
					res <- ws.Close(1005, "")
					res <- ws.Close(1000, string(make([]byte, 124)))
					res <- ws.SendText("still open")
				})
			})
			c := dial(t, s.addr, "/r")
			if within(t, 5*time.Second, res, "Close 1005") == nil || within(t, 5*time.Second, res, "long reason") == nil {
				t.Fatal("Close accepted a code or reason that may not be sent")
			}
			if err := within(t, 5*time.Second, res, "send"); err != nil {
				t.Fatal(err)
			}
			c.expectMessage(ws.OpText, []byte("still open"))
		}},
		{"conn/handler_panic_closes_1011", func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/p", func(ws api.Conn) { panic("handler bug") })
				r.Handle("/echo", echo)
			})
			c := dial(t, s.addr, "/p")
			c.finishClose(api.StatusInternalError)
			other := dial(t, s.addr, "/echo")
			other.text("alive")
			other.expectMessage(ws.OpText, []byte("alive"))
		}},
		{"conn/peer_vanishes_without_close", func(t *testing.T, k *kit) {
			res := make(chan error, 2)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/v", func(ws api.Conn) {
					ws.SendText("hi")
					_, err := ws.Receive()
					res <- err
					select {
					case <-ws.Context().Done():
						res <- nil
					case <-time.After(5 * time.Second):
						res <- errors.New("context not done after the peer vanished")
					}
				})
			})
			c := dial(t, s.addr, "/v")
			c.expectMessage(ws.OpText, []byte("hi"))
			c.conn.(*net.TCPConn).SetLinger(0) // close sends RST
			c.conn.Close()
			checkCloseErr(t, within(t, 5*time.Second, res, "Receive error"), api.StatusAbnormalClosure, "")
			if err := within(t, 5*time.Second, res, "Context"); err != nil {
				t.Fatal(err)
			}
		}},
		{"conn/send_after_peer_vanished_fails", func(t *testing.T, k *kit) {
			res := make(chan error, 1)
			gone := make(chan struct{})
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/v", func(ws api.Conn) {
					ws.SendText("hi")
					<-gone
					<-ws.Context().Done()
					var err error
					for range 100 {
						if err = ws.SendText("into the void"); err != nil {
							break
						}
					}
					res <- err
				})
			})
			c := dial(t, s.addr, "/v")
			c.expectMessage(ws.OpText, []byte("hi"))
			c.conn.(*net.TCPConn).SetLinger(0)
			c.conn.Close()
			close(gone)
			checkCloseErr(t, within(t, 5*time.Second, res, "Send error"), api.StatusAbnormalClosure, "")
		}},
		{"conn/context_done_on_peer_close", func(t *testing.T, k *kit) {
			res := make(chan error, 1)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/v", func(ws api.Conn) {
					ws.OnClose(func(*api.CloseError) {})
					go func() {
						<-ws.Context().Done()
						res <- nil
					}()
				})
			})
			c := dial(t, s.addr, "/v")
			c.closeFrame(1000, "")
			c.finishClose(1000)
			within(t, 5*time.Second, res, "Context done")
		}},
		{"conn/ping_answered_while_handler_busy_sending", func(t *testing.T, k *kit) {
			stop := make(chan struct{})
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/busy", func(ws api.Conn) {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if ws.SendBinary(make([]byte, 512)) != nil {
							return
						}
					}
				})
			})
			defer close(stop)
			c := dial(t, s.addr, "/busy")
			c.ping([]byte("are you there"))
			for {
				f, err := c.read(10 * time.Second)
				if err != nil {
					t.Fatalf("no pong: %v", err)
				}
				if f.h.OpCode == ws.OpPong {
					if string(f.payload) != "are you there" {
						t.Fatalf("pong payload %q", f.payload)
					}
					return
				}
			}
		}},
		{"conn/ping_while_handler_never_receives", func(t *testing.T, k *kit) {
			release := make(chan struct{})
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/deaf", func(ws api.Conn) { <-release })
			})
			defer close(release)
			c := dial(t, s.addr, "/deaf")
			c.ping([]byte("x"))
			f := c.nextAny()
			if f.h.OpCode != ws.OpPong {
				t.Fatalf("got %v, want pong", f.h.OpCode)
			}
		}},
		{"conn/server_pings_and_answering_peer_stays", func(t *testing.T, k *kit) {
			o := testOptions()
			o.PingInterval, o.PongTimeout = 100*time.Millisecond, 200*time.Millisecond
			s := k.echo(o)
			c := dial(t, s.addr, "/echo")
			pings := 0
			deadline := time.Now().Add(800 * time.Millisecond)
			for time.Now().Before(deadline) {
				f, err := c.read(time.Until(deadline) + 10*time.Millisecond)
				if err != nil {
					break
				}
				if f.h.OpCode == ws.OpPing {
					pings++
					c.frame(true, ws.OpPong, f.payload)
				}
			}
			if pings < 3 {
				t.Fatalf("%d pings in 800ms with a 100ms interval", pings)
			}
			c.text("still here")
			c.expectMessage(ws.OpText, []byte("still here"))
		}},
		{"conn/peer_that_stops_answering_pings_is_dropped", func(t *testing.T, k *kit) {
			o := testOptions()
			o.PingInterval, o.PongTimeout = 100*time.Millisecond, 200*time.Millisecond
			res := make(chan error, 1)
			s := k.serve(o, func(r *api.Router) {
				r.Handle("/p", func(ws api.Conn) { _, err := ws.Receive(); res <- err })
			})
			c := dial(t, s.addr, "/p")
			start := time.Now()
			c.expectEOF() // we read pings but never answer
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("dropped after %v", d)
			}
			checkCloseErr(t, within(t, 5*time.Second, res, "handler"), api.StatusAbnormalClosure, "")
		}},
		{"conn/idle_timeout_closes_1001", func(t *testing.T, k *kit) {
			o := testOptions()
			o.IdleTimeout = 200 * time.Millisecond
			o.PingInterval = api.Disabled
			s := k.echo(o)
			c := dial(t, s.addr, "/echo")
			for range 3 { // traffic keeps it open
				time.Sleep(100 * time.Millisecond)
				c.text("x")
				c.expectMessage(ws.OpText, []byte("x"))
			}
			start := time.Now()
			c.finishClose(api.StatusGoingAway)
			if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
				t.Fatalf("closed after %v of silence, idle timeout %v", d, o.IdleTimeout)
			}
		}},
		{"conn/idle_timeout_counts_messages_not_pings_or_pongs", func(t *testing.T, k *kit) {
			// Browsers and client libraries answer the server's pings: were
			// their pongs (or the client's own pings) activity, a ping
			// interval shorter than the idle timeout would keep every idle
			// connection open.
			o := testOptions()
			o.IdleTimeout = 400 * time.Millisecond
			o.PingInterval, o.PongTimeout = 50*time.Millisecond, time.Second
			s := k.echo(o)
			c := dial(t, s.addr, "/echo")
			c.text("x")
			c.expectMessage(ws.OpText, []byte("x"))
			start := time.Now()
			pings := 0
			for {
				f, err := c.read(3 * time.Second)
				if err != nil {
					t.Fatalf("after %v, %d pings answered: %v", time.Since(start), pings, err)
				}
				if time.Since(start) > 3*time.Second {
					t.Fatalf("still open after %v of messages' silence, %d pings answered; idle timeout %v", time.Since(start), pings, o.IdleTimeout)
				}
				if f.h.OpCode == ws.OpPing {
					pings++
					c.frame(true, ws.OpPong, f.payload)
					c.ping([]byte("mine"))
					continue
				}
				if f.h.OpCode == ws.OpClose {
					break
				}
			}
			d := time.Since(start)
			if d < 300*time.Millisecond || d > 2*time.Second || pings < 3 {
				t.Fatalf("closed after %v of messages' silence with %d pings answered; idle timeout %v", d, pings, o.IdleTimeout)
			}
		}},
		{"conn/released_storage_never_changes_a_kept_message", func(t *testing.T, k *kit) {
			// A handler keeps every third message and releases the others
			// (api.Message.Release): the next messages take the released
			// storage, and what was kept must stay as it came, whole or
			// fragmented (a growing message gives its smaller buffer back).
			const total, size = 300, 1000
			check := func(kept map[int][]byte) string {
				for i, data := range kept {
					if !bytes.Equal(data, keptMessage(i, size)) {
						return "message " + strconv.Itoa(i) + " changed after it was received"
					}
				}
				return "ok"
			}
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/blocking", func(ws api.Conn) {
					kept := map[int][]byte{}
					for i := range total {
						m, err := ws.Receive()
						if err != nil {
							return
						}
						if i%3 == 0 {
							kept[i] = m.Data
						} else {
							m.Release()
						}
					}
					ws.SendText(check(kept))
					echo(ws)
				})
				r.Handle("/event", func(ws api.Conn) {
					kept := map[int][]byte{}
					i := 0
					ws.OnMessage(func(m api.Message) {
						switch {
						case i == total:
							ws.Send(m)
							return
						case i%3 == 0:
							kept[i] = m.Data
						default:
							m.Release()
						}
						if i++; i == total {
							ws.SendText(check(kept))
						}
					})
				})
			})
			for _, path := range []string{"/blocking", "/event"} {
				c := dial(t, s.addr, path)
				for i := range total {
					p := keptMessage(i, size)
					if i%2 == 0 {
						c.frame(true, ws.OpBinary, p)
						continue
					}
					c.frame(false, ws.OpBinary, p[:10])
					c.frame(false, ws.OpContinuation, p[10:300])
					c.frame(true, ws.OpContinuation, p[300:])
				}
				c.expectMessage(ws.OpText, []byte("ok"))
			}
		}},
		{"conn/close_with_bad_arguments_says_so_and_closes_nothing", func(t *testing.T, k *kit) {
			errs := make(chan error, 3)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/c", func(ws api.Conn) {
					errs <- ws.Close(4000, strings.Repeat("r", 200))
					errs <- ws.Close(1005, "")
					errs <- ws.Close(4000, "\xff")
					echo(ws)
				})
			})
			c := dial(t, s.addr, "/c")
			for _, want := range []string{
				"wsmatrix: Close(4000): the reason is 200 bytes, more than a close frame's 123",
				"wsmatrix: Close(1005): close code 1005 (no status received) may not be sent",
				"wsmatrix: Close(4000): the reason is not UTF-8",
			} {
				err := within(t, 5*time.Second, errs, "Close")
				var ce *api.CloseError
				if err == nil || err.Error() != want || errors.As(err, &ce) {
					t.Fatalf("Close: %v (a CloseError: %v), want %q: the connection is not closed", err, errors.As(err, &ce), want)
				}
			}
			c.text("still open")
			c.expectMessage(ws.OpText, []byte("still open"))
		}},
		{"conn/inbox_full_pushes_back_and_loses_nothing", func(t *testing.T, k *kit) {
			o := testOptions()
			o.InboxSize = 2
			release := make(chan struct{})
			s := k.serve(o, func(r *api.Router) {
				r.Handle("/slow", func(ws api.Conn) {
					<-release
					echo(ws)
				})
			})
			c := dial(t, s.addr, "/slow")
			const n = 300
			go func() {
				for i := range n {
					c.conn.Write(encode(true, 0, ws.OpText, []byte(strconv.Itoa(i))))
				}
			}()
			time.Sleep(200 * time.Millisecond)
			close(release)
			for i := range n {
				c.expectMessage(ws.OpText, []byte(strconv.Itoa(i)))
			}
		}},
		{"conn/one_thousand_connections", func(t *testing.T, k *kit) {
			s := k.echo(testOptions())
			const n = 1000
			clients := make([]*client, n)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failed []string
			for i := range n {
				wg.Go(func() {
					c, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/echo"))
					if resp.StatusCode != 101 {
						mu.Lock()
						failed = append(failed, fmt.Sprintf("conn %d: %d", i, resp.StatusCode))
						mu.Unlock()
						return
					}
					c.conn.SetDeadline(time.Time{})
					clients[i] = c
				})
			}
			wg.Wait()
			if len(failed) > 0 {
				t.Fatalf("%d of %d upgrades failed: %v", len(failed), n, failed[0])
			}
			for i, c := range clients {
				c.text(strconv.Itoa(i))
			}
			for i, c := range clients {
				c.expectMessage(ws.OpText, []byte(strconv.Itoa(i)))
			}
		}},
		// A peer that sends a message and ends its sending side at once
		// sees the connection end, every time (without a close frame it
		// is cut, 1006). The data and the FIN often come in one read,
		// which returns the data and leaves the end for the next read; a
		// reader that took a short read as proof that nothing more was
		// there and waited for the poller (which had reported that one
		// arrival already) missed the end in about half of these runs.
		{"event/end_seen_after_a_message", func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", echoEvent)
			})
			for range 100 {
				c := dial(t, s.addr, "/e")
				c.text("bye")
				c.conn.(*net.TCPConn).CloseWrite()
				c.expectEOF()
				c.conn.Close()
			}
		}},
		// Frames cut anywhere, and messages larger than any read buffer,
		// reach an event-style handler whole: the header in pieces, a
		// message written a kilobyte at a time, one of 300 KiB in one
		// write, then many in one write.
		{"event/frames_in_pieces", func(t *testing.T, k *kit) {
			o := testOptions()
			o.ReadLimit = 1 << 20
			s := k.serve(o, func(r *api.Router) {
				r.Handle("/e", echoEvent)
			})
			c := dial(t, s.addr, "/e")
			c.text("first") // event style is on once this comes back
			c.expectMessage(ws.OpText, []byte("first"))
			small := encode(true, 0, ws.OpText, []byte("in pieces"))
			for _, piece := range [][]byte{small[:1], small[1:2], small[2:4], small[4:7], small[7:]} {
				c.write(piece)
				time.Sleep(5 * time.Millisecond) // each piece its own read
			}
			c.expectMessage(ws.OpText, []byte("in pieces"))
			mid := keptMessage(1, 100<<10)
			b := encode(true, 0, ws.OpBinary, mid)
			for i := 0; i < len(b); i += 1000 {
				c.write(b[i:min(i+1000, len(b))])
			}
			c.expectMessage(ws.OpBinary, mid)
			big := keptMessage(2, 300<<10)
			c.write(encode(true, 0, ws.OpBinary, big))
			c.expectMessage(ws.OpBinary, big)
			var many []byte
			for i := range 500 {
				many = append(many, encode(true, 0, ws.OpText, []byte(strconv.Itoa(i)))...)
			}
			c.write(many)
			for i := range 500 {
				c.expectMessage(ws.OpText, []byte(strconv.Itoa(i)))
			}
		}},
		// What the peer sent before the handler switched to event style
		// is delivered in order with the rest: more than the inbox holds
		// (reading paused with input left over), then a whole message and
		// half of the next.
		{"event/input_before_OnMessage_kept", func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", func(ws api.Conn) {
					time.Sleep(300 * time.Millisecond) // the input waits, read or not
					ws.OnMessage(func(m api.Message) { ws.Send(m) })
				})
			})
			c := dial(t, s.addr, "/e")
			const n, size = 40, 64 << 10 // 2.5 MiB, over DefaultInboxBytes
			second := encode(true, 0, ws.OpText, []byte("second"))
			wrote := make(chan error, 1)
			go func() {
				var b []byte
				for i := range n {
					b = append(b, encode(true, 0, ws.OpBinary, keptMessage(i, size))...)
				}
				b = append(b, encode(true, 0, ws.OpText, []byte("first"))...)
				_, err := c.conn.Write(append(b, second[:4]...))
				if err == nil {
					time.Sleep(200 * time.Millisecond)
					_, err = c.conn.Write(second[4:])
				}
				wrote <- err
			}()
			for i := range n {
				c.expectMessage(ws.OpBinary, keptMessage(i, size))
			}
			c.expectMessage(ws.OpText, []byte("first"))
			c.expectMessage(ws.OpText, []byte("second"))
			if err := within(t, 5*time.Second, wrote, "the writes"); err != nil {
				t.Fatalf("write: %v", err)
			}
			c.text("third")
			c.expectMessage(ws.OpText, []byte("third"))
		}},
		{"event/order_kept", func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", echoEvent)
			})
			c := dial(t, s.addr, "/e")
			const n = 2000
			go func() {
				var b []byte
				for i := range n {
					b = append(b, encode(true, 0, ws.OpText, []byte(strconv.Itoa(i)))...)
				}
				c.conn.Write(b)
			}()
			for i := range n {
				c.expectMessage(ws.OpText, []byte(strconv.Itoa(i)))
			}
		}},
		{"event/one_at_a_time_per_connection", func(t *testing.T, k *kit) {
			var inside, overlap atomic.Int32
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", func(ws api.Conn) {
					ws.OnMessage(func(m api.Message) {
						if inside.Add(1) > 1 {
							overlap.Add(1)
						}
						time.Sleep(time.Millisecond)
						inside.Add(-1)
						ws.Send(m)
					})
				})
			})
			c := dial(t, s.addr, "/e")
			for i := range 100 {
				c.text(strconv.Itoa(i))
			}
			for i := range 100 {
				c.expectMessage(ws.OpText, []byte(strconv.Itoa(i)))
			}
			if overlap.Load() > 0 {
				t.Fatalf("OnMessage ran concurrently %d times on one connection", overlap.Load())
			}
		}},
		{"event/connections_run_in_parallel", func(t *testing.T, k *kit) {
			// One slow callback must not hold back other connections.
			block := make(chan struct{})
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", func(ws api.Conn) {
					ws.OnMessage(func(m api.Message) {
						if m.String() == "block" {
							<-block
						}
						ws.Send(m)
					})
				})
			})
			a, b := dial(t, s.addr, "/e"), dial(t, s.addr, "/e")
			a.text("block")
			b.text("free")
			b.expectMessage(ws.OpText, []byte("free"))
			close(block)
			a.expectMessage(ws.OpText, []byte("block"))
		}},
		{"event/on_close_after_last_message", func(t *testing.T, k *kit) {
			got := make(chan string, 10)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", func(ws api.Conn) {
					ws.OnMessage(func(m api.Message) { got <- m.String() })
					ws.OnClose(func(ce *api.CloseError) { got <- "close " + strconv.Itoa(int(ce.Code)) + " " + ce.Reason })
				})
			})
			c := dial(t, s.addr, "/e")
			c.text("a")
			c.text("b")
			c.closeFrame(4001, "done")
			c.finishClose(4001)
			for _, want := range []string{"a", "b", "close 4001 done"} {
				if g := within(t, 5*time.Second, got, want); g != want {
					t.Fatalf("got %q, want %q", g, want)
				}
			}
			select {
			case g := <-got:
				t.Fatalf("callback after OnClose: %q", g)
			case <-time.After(100 * time.Millisecond):
			}
		}},
		{"event/receive_refused_in_event_style", func(t *testing.T, k *kit) {
			res := make(chan error, 1)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", func(ws api.Conn) {
					ws.OnMessage(func(api.Message) {})
					_, err := ws.Receive()
					res <- err
				})
			})
			dial(t, s.addr, "/e")
			if err := within(t, 5*time.Second, res, "Receive"); !errors.Is(err, api.ErrEventStyle) {
				t.Fatalf("Receive in event style: %v, want ErrEventStyle", err)
			}
		}},
		{"event/panic_in_callback_closes_1011", func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/e", func(ws api.Conn) { ws.OnMessage(func(api.Message) { panic("callback bug") }) })
			})
			c := dial(t, s.addr, "/e")
			c.text("boom")
			c.finishClose(api.StatusInternalError)
		}},
		{"event/idle_connections_hold_no_handler_goroutine", func(t *testing.T, k *kit) {
			checkIdleGoroutines(t, k, true)
		}},
		{"conn/idle_blocking_connections_goroutines", func(t *testing.T, k *kit) {
			checkIdleGoroutines(t, k, false)
		}},
		{"shutdown/graceful_sends_1001", func(t *testing.T, k *kit) {
			returned := make(chan error, 3)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/b", func(ws api.Conn) { _, err := ws.Receive(); returned <- err })
				r.Handle("/e", func(ws api.Conn) {
					ws.OnClose(func(ce *api.CloseError) { returned <- ce })
				})
			})
			cs := []*client{dial(t, s.addr, "/b"), dial(t, s.addr, "/b"), dial(t, s.addr, "/e")}
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				done <- s.rt.Shutdown(ctx)
			}()
			for _, c := range cs {
				c.finishClose(api.StatusGoingAway)
			}
			if err := within(t, 10*time.Second, done, "Shutdown"); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			for range cs {
				checkCloseErr(t, within(t, time.Second, returned, "handler"), api.StatusGoingAway, "")
			}
			if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
				t.Fatal("still accepting after Shutdown")
			}
		}},
		{"shutdown/deadline_cuts_stuck_peers", func(t *testing.T, k *kit) {
			release := make(chan struct{})
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/stuck", func(ws api.Conn) {
					ws.Receive()
					<-release // a handler that ignores the end for a while
				})
			})
			c := dial(t, s.addr, "/stuck") // a peer that never answers the close
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := s.rt.Shutdown(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Shutdown took %v past a 300ms deadline", d)
			}
			c.expectClose(api.StatusGoingAway)
			c.expectEOF() // cut
			close(release)
		}},
	}
}

// flood sends 64 KiB messages until Send fails or 2 GiB went out.
func flood(ws api.Conn) error {
	p := make([]byte, 64<<10)
	for range 32 << 10 {
		if err := ws.SendBinary(p); err != nil {
			return err
		}
	}
	return nil
}

// checkIdleGoroutines opens idle connections and counts the goroutines
// they hold against what the runtime documents.
func checkIdleGoroutines(t *testing.T, k *kit, event bool) {
	var handler api.Handler = func(ws api.Conn) {
		for {
			if _, err := ws.Receive(); err != nil {
				return
			}
		}
	}
	if event {
		handler = func(ws api.Conn) { ws.OnMessage(func(api.Message) {}) }
	}
	s := k.serve(testOptions(), func(r *api.Router) { r.Handle("/idle", handler) })
	budget := k.cfg.IdleBlocking
	if event {
		budget = k.cfg.IdleEvent
	}
	// Warm up: one connection, closed, so that lazily started goroutines exist.
	w := dial(t, s.addr, "/idle")
	w.text("warm")
	time.Sleep(50 * time.Millisecond)
	before := goruntime.NumGoroutine()
	const n = 200
	for range n {
		c := dial(t, s.addr, "/idle")
		c.text("x") // one message, then idle
	}
	// Beside its connections' own, a runtime may run goroutines that all
	// of them share (stdhttp and fasthttp start up to 8 pollers for
	// event-style connections): what the budget does not count.
	const shared = 8
	var got int
	for range 50 { // let handlers and workers settle
		time.Sleep(20 * time.Millisecond)
		got = goruntime.NumGoroutine() - before
		if got <= budget*n+shared {
			break
		}
	}
	if got > budget*n+shared {
		t.Fatalf("%d idle connections (event style %v) hold %d goroutines, the runtime documents %d each (and up to %d shared)", n, event, got, budget, shared)
	}
	t.Logf("%d idle connections (event style %v): %d goroutines (%.2f each)", n, event, got, float64(got)/n)
}

// keptMessage is message n of size bytes, n written throughout.
func keptMessage(n, size int) []byte {
	p := make([]byte, size)
	for i := 0; i+4 <= size; i += 4 {
		binary.BigEndian.PutUint32(p[i:], uint32(n))
	}
	return p
}
