package runtimetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// hardeningCases are what misbehaving peers and a close review found:
// order around protocol errors, byte bounds per connection, the send
// queue's contract, panics outside handlers, restarts.
func hardeningCases() []testCase {
	var cases []testCase

	// Messages that came before a protocol violation are handled, and
	// what the handler sends in reply goes out before the 1002.
	violations := []struct {
		name  string
		frame []byte
	}{
		{"rsv1", encode(true, 4, ws.OpText, []byte("x"))},
		{"reserved_opcode_3", encode(true, 0, 3, nil)},
		{"reserved_opcode_11", encode(true, 0, 11, nil)},
		{"continuation_without_start", encode(true, 0, ws.OpContinuation, []byte("x"))},
	}
	styles := []struct {
		name    string
		handler api.Handler
	}{
		{"blocking", func(ws api.Conn) {
			for {
				m, err := ws.Receive()
				if err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond) // a handler that takes its time
				if ws.Send(m) != nil {
					return
				}
			}
		}},
		{"event", func(ws api.Conn) {
			ws.OnMessage(func(m api.Message) {
				time.Sleep(20 * time.Millisecond)
				ws.Send(m)
			})
		}},
	}
	for _, v := range violations {
		for _, st := range styles {
			cases = append(cases, testCase{"order/replies_before_1002/" + v.name + "/" + st.name, func(t *testing.T, k *kit) {
				s := k.serve(testOptions(), func(r *api.Router) { r.Handle("/e", st.handler) })
				c := dial(t, s.addr, "/e")
				var b []byte
				b = append(b, encode(true, 0, ws.OpText, []byte("one"))...)
				b = append(b, encode(true, 0, ws.OpBinary, []byte("two"))...)
				b = append(b, v.frame...)
				c.write(b) // one segment
				c.expectMessage(ws.OpText, []byte("one"))
				c.expectMessage(ws.OpBinary, []byte("two"))
				c.expectClose(api.StatusProtocolError)
				c.expectEOF()
			}})
		}
	}
	cases = append(cases, testCase{"order/1002_bounded_by_close_timeout_when_handler_stalls", func(t *testing.T, k *kit) {
		o := testOptions()
		o.CloseTimeout = 300 * time.Millisecond
		got := make(chan error, 1)
		s := k.serve(o, func(r *api.Router) {
			r.Handle("/e", func(ws api.Conn) {
				ws.Receive()
				<-ws.Context().Done() // never asks for the next message
				got <- context.Cause(ws.Context())
			})
		})
		c := dial(t, s.addr, "/e")
		c.write(append(encode(true, 0, ws.OpText, []byte("one")), encode(true, 0, 3, nil)...))
		c.expectClose(api.StatusProtocolError)
		c.expectEOF()
		within(t, 5*time.Second, got, "handler's context to end")
	}})

	// Byte bounds: a peer that sends and never reads costs the server a
	// bounded number of bytes, whatever the size of its messages.
	for _, st := range []string{"blocking", "event"} {
		cases = append(cases, testCase{"bounds/non_reading_peer_flooding_large_messages/" + st, func(t *testing.T, k *kit) {
			o := testOptions()
			o.ReadLimit = 2 << 20
			o.WriteTimeout = 20 * time.Second // the peer is slow, not gone: no write gives up during the case
			var h api.Handler = echo
			if st == "event" {
				h = func(ws api.Conn) {
					ws.OnMessage(func(m api.Message) {
						ws.Send(m)
						m.Release()
					})
				}
			}
			s := k.serve(o, func(r *api.Router) { r.Handle("/echo", h) })
			msg := encode(true, 0, ws.OpBinary, make([]byte, o.ReadLimit))
			held := floodAndMeasure(t, s.addr, "/echo", msg, 64<<20)
			// The handler's message, the send backlog (one message), and the
			// read side: max(ReadLimit, InboxBytes) of input, which an event
			// loop's buffer may hold with as much room again.
			bound := 4 * o.ReadLimit
			t.Logf("server holds %d KiB for a peer that sent %d KiB messages and reads nothing (bound %d KiB)", held>>10, o.ReadLimit>>10, bound>>10)
			if held > bound {
				t.Fatalf("server holds %d bytes for one non-reading peer, bound %d", held, bound)
			}
		}})
	}
	cases = append(cases, testCase{"bounds/peer_that_floods_after_the_close_is_cut", func(t *testing.T, k *kit) {
		// The server sent its close frame; a peer that answers with a flood
		// instead of its close frame is read from for a bounded number of
		// bytes, not for the whole close timeout.
		o := testOptions()
		o.CloseTimeout = 3 * time.Second
		o.ReadLimit = 1 << 20
		s := k.serve(o, func(r *api.Router) {
			r.Handle("/bye", func(ws api.Conn) { ws.Close(api.StatusNormalClosure, "bye") })
		})
		c := dial(t, s.addr, "/bye")
		c.expectClose(api.StatusNormalClosure)
		floodUntilCut(t, c, o, "the server's close frame")
	}})
	for _, after := range []string{"a_protocol_error", "its_close_frame"} {
		cases = append(cases, testCase{"bounds/peer_that_floods_after_" + after + "_is_cut", func(t *testing.T, k *kit) {
			// After a protocol error, or the peer's close frame, the messages
			// before it are still the handler's (stDraining, up to CloseTimeout
			// while it is busy): what the peer sends meanwhile is read for a
			// bounded number of bytes.
			o := testOptions()
			o.CloseTimeout = 3 * time.Second
			o.ReadLimit = 1 << 20
			release := make(chan struct{})
			defer close(release)
			s := k.serve(o, func(r *api.Router) {
				r.Handle("/busy", func(ws api.Conn) {
					// Busy with the first message while the second waits:
					// the connection drains.
					ws.OnMessage(func(api.Message) { <-release })
				})
			})
			c := dial(t, s.addr, "/busy")
			before := append(encode(true, 0, ws.OpText, []byte("b1")), encode(true, 0, ws.OpText, []byte("b2"))...)
			bad := append(before, 0x81, 0x01, 'x') // an unmasked frame
			if after == "its_close_frame" {
				bad = append(before, encode(true, 0, ws.OpClose, closeBody(api.StatusNormalClosure, ""))...)
			}
			c.write(bad)
			floodUntilCut(t, c, o, after+", its handler busy")
		}})
	}
	cases = append(cases, testCase{"bounds/non_reading_peer_flooding_pings", func(t *testing.T, k *kit) {
		o := testOptions()
		o.ReadLimit = 64 << 10 // an event loop may buffer ReadLimit + InboxBytes before it cuts
		s := k.echo(o)
		held := floodAndMeasure(t, s.addr, "/echo", encode(true, 0, ws.OpPing, bytes.Repeat([]byte("p"), 125)), 64<<20)
		// Pongs queued up to the send queue's budget (and copied once more
		// into an event loop's outbound buffer), the read side's budget, and
		// the room growing buffers keep: up to as much again.
		bound := 2*(api.DefaultSendQueueBytes+max(int(o.ReadLimit), api.DefaultInboxBytes)) + 1<<20
		t.Logf("server holds %d KiB for a peer that sends pings and reads no pong (bound %d KiB)", held>>10, bound>>10)
		if held > int64(bound) {
			t.Fatalf("server holds %d bytes of pongs for one non-reading peer, bound %d", held, bound)
		}
	}})

	// The send queue's contract, for one sender and for many.
	for _, senders := range []int{1, 8} {
		for _, policy := range []api.QueuePolicy{api.QueueClose, api.QueueBlock} {
			for _, event := range []bool{false, true} {
				name := fmt.Sprintf("queue/%s_with_%d_senders_fails_with_ErrQueueFull_and_1008", policy, senders)
				if event {
					name += "/event"
				}
				cases = append(cases, testCase{name, func(t *testing.T, k *kit) {
					o := testOptions()
					o.SendQueueFull = policy
					o.WriteTimeout = 300 * time.Millisecond
					if policy == api.QueueClose {
						o.WriteTimeout = time.Minute // QueueClose never waits for it
					}
					obs := &countingObserver{}
					o.Observer = obs.observer()
					res := make(chan error, senders)
					s := k.serve(o, func(r *api.Router) {
						r.Handle("/flood", func(ws api.Conn) {
							if event { // the senders start from the callback, on an event-style connection
								ws.OnMessage(func(api.Message) {
									for range senders {
										go func() { res <- flood(ws) }()
									}
								})
								return
							}
							var wg sync.WaitGroup
							for range senders {
								wg.Go(func() { res <- flood(ws) })
							}
							wg.Wait()
						})
					})
					c := dial(t, s.addr, "/flood") // and it reads nothing until the server gave up
					if event {
						c.text("go")
					}
					var full int
					for range senders {
						err := within(t, 20*time.Second, res, "Send to fail")
						var ce *api.CloseError
						switch {
						case errors.Is(err, api.ErrQueueFull):
							full++
							if n := strings.Count(err.Error(), "wsmatrix:"); n != 1 {
								t.Fatalf("error %q: its prefix %d times", err, n)
							}
						case errors.As(err, &ce) && ce.Code == api.StatusPolicyViolation:
							// a sender that came after the queue-full close
						default:
							t.Fatalf("Send to a peer that does not read: %v, want ErrQueueFull (or the 1008 close after it)", err)
						}
					}
					if full == 0 {
						t.Fatal("no Send failed with ErrQueueFull")
					}
					if obs.queueFull.Load() == 0 {
						t.Fatal("Observer.QueueFull not called")
					}
					reason := c.expectClose(api.StatusPolicyViolation)
					if want := "send queue full"; policy == api.QueueBlock {
						want += ": the peer stopped reading" // the same on every runtime
						if reason != want {
							t.Fatalf("close reason %q, want %q", reason, want)
						}
					}
				}})
			}
		}
	}

	// The keepalive clock never waits on one connection.
	cases = append(cases, testCase{"keepalive/pings_go_out_while_another_peer_is_stuck", func(t *testing.T, k *kit) {
		o := testOptions()
		o.PingInterval = 100 * time.Millisecond
		o.PongTimeout = 5 * time.Second
		o.WriteTimeout = 10 * time.Second
		s := k.serve(o, func(r *api.Router) {
			r.Handle("/flood", func(ws api.Conn) { flood(ws) })
			r.Handle("/idle", func(ws api.Conn) { ws.Receive() })
		})
		dial(t, s.addr, "/flood") // never reads
		time.Sleep(200 * time.Millisecond)
		c := dial(t, s.addr, "/idle")
		for i := range 5 {
			f, err := c.read(3 * time.Second)
			if err != nil {
				t.Fatalf("ping %d to an idle peer: %v", i, err)
			}
			if f.h.OpCode != ws.OpPing {
				t.Fatalf("got %v, want a ping", f.h.OpCode)
			}
			c.frame(true, ws.OpPong, f.payload)
		}
	}})

	// No data frame after the close frame (RFC 6455 5.5.1).
	for _, st := range []string{"blocking", "event"} {
		cases = append(cases, testCase{"order/nothing_after_close_frame/" + st, func(t *testing.T, k *kit) {
			burst := func(ws api.Conn) {
				for i := range 300 {
					if ws.SendText(strconv.Itoa(i)) != nil {
						return
					}
				}
			}
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/b", func(ws api.Conn) {
					if st == "event" {
						ws.OnMessage(func(api.Message) { go burst(ws) })
						return
					}
					ws.Receive()
					go burst(ws)
					ws.Receive()
				})
			})
			for range 20 {
				c := dial(t, s.addr, "/b")
				c.text("go")
				c.next() // the burst has begun
				c.closeFrame(api.StatusNormalClosure, "")
				for {
					f, err := c.read(10 * time.Second)
					if err != nil {
						t.Fatalf("reading to the close frame: %v", err)
					}
					if f.h.OpCode == ws.OpClose {
						break
					}
				}
				// Whatever comes now must be EOF, not a frame.
				if f, err := c.read(10 * time.Second); err == nil {
					t.Fatalf("frame %v %q after the close frame", f.h.OpCode, trunc(f.payload))
				}
				c.conn.Close()
			}
		}})
	}

	// Panics outside handlers: middleware and CheckOrigin.
	cases = append(cases, testCase{"panic/middleware_answers_500_and_server_goes_on", func(t *testing.T, k *kit) {
		o := testOptions()
		logs := &logCapture{}
		o.Logger = logs.logger()
		obs := &countingObserver{}
		o.Observer = obs.observer()
		s := k.serve(o, func(r *api.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Query().Get("boom") != "" {
						panic("middleware bug")
					}
					next.ServeHTTP(w, r)
				})
			})
			r.Handle("/echo", echo)
		})
		_, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/echo?boom=1"))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("panicking middleware: status %d, want 500", resp.StatusCode)
		}
		c := dial(t, s.addr, "/echo")
		c.text("still serving")
		c.expectMessage(ws.OpText, []byte("still serving"))
		if !logs.has("panic", "middleware bug", "stack=") {
			t.Fatalf("the panic was not logged with its value and stack; logs:\n%s", logs)
		}
		if obs.panics.Load() != 1 {
			t.Fatalf("Observer.Panicked called %d times, want 1", obs.panics.Load())
		}
	}})
	cases = append(cases, testCase{"panic/check_origin_answers_500_and_server_goes_on", func(t *testing.T, k *kit) {
		o := testOptions()
		o.Logger = (&logCapture{}).logger()
		o.CheckOrigin = func(r *http.Request) bool {
			if r.Header.Get("Origin") == "http://boom" {
				panic("origin check bug")
			}
			return true
		}
		s := k.echo(o)
		_, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/echo", "Origin: http://boom"))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("panicking CheckOrigin: status %d, want 500", resp.StatusCode)
		}
		c := dial(t, s.addr, "/echo", "Origin: http://fine")
		c.text("still serving")
		c.expectMessage(ws.OpText, []byte("still serving"))
	}})
	cases = append(cases, testCase{"panic/on_close_callback_contained", func(t *testing.T, k *kit) {
		o := testOptions()
		o.Logger = (&logCapture{}).logger()
		s := k.serve(o, func(r *api.Router) {
			r.Handle("/e", func(ws api.Conn) {
				ws.OnMessage(func(m api.Message) { ws.Send(m) })
				ws.OnClose(func(*api.CloseError) { panic("on close bug") })
			})
		})
		c := dial(t, s.addr, "/e")
		c.closeFrame(api.StatusNormalClosure, "")
		c.finishClose(api.StatusNormalClosure)
		c2 := dial(t, s.addr, "/e")
		c2.text("still serving")
		c2.expectMessage(ws.OpText, []byte("still serving"))
	}})

	for _, st := range styles {
		cases = append(cases, testCase{"panic/observer_contained/" + st.name, func(t *testing.T, k *kit) {
			// An Observer is user code, called from the read path, the
			// write path, the event loop and the close: a panic in it is
			// logged and the connection and the server go on.
			o := testOptions()
			logs := &logCapture{}
			o.Logger = logs.logger()
			boom := func() { panic("observer bug") }
			o.Observer = &api.Observer{
				Handshake: func(int) { boom() }, Opened: boom, Closed: func(api.StatusCode) { boom() },
				Received: func(int) { boom() }, Sent: func(int) { boom() }, QueueFull: boom,
				Refused: func(string) { boom() },
			}
			s := k.serve(o, func(r *api.Router) { r.Handle("/e", st.handler) })
			for i := range 2 {
				c := dial(t, s.addr, "/e")
				for _, m := range []string{"one", "two"} {
					c.text(m)
					c.expectMessage(ws.OpText, []byte(m))
				}
				c.closeFrame(api.StatusNormalClosure, "")
				c.finishClose(api.StatusNormalClosure)
				if i == 0 && !logs.has("level=ERROR", "observer panic", "observer bug") {
					t.Fatalf("the observer's panic was not logged; logs:\n%s", logs)
				}
			}
		}})
	}

	// Refusals leave a trace: logged, counted by reason, explained.
	cases = append(cases, testCase{"observe/refused_origin_logged_counted_explained", func(t *testing.T, k *kit) {
		o := testOptions()
		logs := &logCapture{}
		o.Logger = logs.logger()
		obs := &countingObserver{}
		o.Observer = obs.observer()
		s := k.echo(o)
		_, resp := rawDial(t, s.addr, upgradeHead(s.addr, "/echo", "Origin: https://evil.example"))
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		for _, want := range []string{"https://evil.example", "OriginPatterns", "--origins"} {
			if !strings.Contains(string(body), want) {
				t.Fatalf("403 body %q does not mention %q", body, want)
			}
		}
		if !logs.has("level=INFO", "upgrade refused", "reason=origin", "path=/echo", "remote=", "evil.example") {
			t.Fatalf("refused upgrade not logged at info with route, remote and origin; logs:\n%s", logs)
		}
		if n := obs.refusals(api.ReasonOrigin); n != 1 {
			t.Fatalf("Observer.Refused(origin) called %d times, want 1", n)
		}
	}})
	for _, bad := range []struct {
		name   string
		opts   func(*api.Options)
		frame  []byte
		code   api.StatusCode
		reason string
		detail string // in the close reason
	}{
		{"too_big", func(o *api.Options) { o.ReadLimit = 1000 }, encode(true, 0, ws.OpBinary, make([]byte, 1001)), api.StatusMessageTooBig, api.ReasonTooBig, "1000 bytes"},
		{"protocol", nil, encode(true, 0, 3, nil), api.StatusProtocolError, api.ReasonProtocol, ""},
		{"utf8", nil, encode(true, 0, ws.OpText, []byte{0xff}), api.StatusInvalidFramePayloadData, api.ReasonUTF8, ""},
	} {
		cases = append(cases, testCase{"observe/close_" + bad.name + "_logged_and_counted", func(t *testing.T, k *kit) {
			o := testOptions()
			if bad.opts != nil {
				bad.opts(&o)
			}
			logs := &logCapture{}
			o.Logger = logs.logger()
			obs := &countingObserver{}
			o.Observer = obs.observer()
			s := k.echo(o)
			c := dial(t, s.addr, "/echo")
			c.write(bad.frame)
			reason := c.expectClose(bad.code)
			c.expectEOF()
			if !strings.Contains(reason, bad.detail) {
				t.Fatalf("close reason %q does not say %q", reason, bad.detail)
			}
			if !logs.has("level=DEBUG", "reason="+bad.reason, "path=/echo", "remote=127.0.0.1:", fmt.Sprintf("code=%d", bad.code)) {
				t.Fatalf("close %v not logged at debug with route, remote and reason; logs:\n%s", bad.code, logs)
			}
			if n := obs.refusals(bad.reason); n != 1 {
				t.Fatalf("Observer.Refused(%s) called %d times, want 1", bad.reason, n)
			}
		}})
	}

	// Receive from several goroutines: every message reaches one of them.
	cases = append(cases, testCase{"conn/concurrent_receivers_each_get_a_message", func(t *testing.T, k *kit) {
		const receivers = 4
		got := make(chan string, receivers)
		waiting := make(chan struct{}, 1)
		s := k.serve(testOptions(), func(r *api.Router) {
			r.Handle("/r", func(ws api.Conn) {
				var wg sync.WaitGroup
				for range receivers {
					wg.Go(func() {
						m, err := ws.Receive()
						if err == nil {
							got <- m.String()
						}
					})
				}
				time.Sleep(20 * time.Millisecond) // all are waiting
				waiting <- struct{}{}
				wg.Wait()
			})
		})
		for run := range 30 {
			c := dial(t, s.addr, "/r")
			<-waiting
			var b []byte
			for i := range receivers {
				b = append(b, encode(true, 0, ws.OpText, []byte{'a' + byte(i)})...)
			}
			c.write(b) // every message in one segment
			seen := map[string]bool{}
			for i := range receivers {
				seen[within(t, 5*time.Second, got, fmt.Sprintf("run %d: receiver %d of %d (a lost wake-up leaves it blocked)", run, i+1, receivers))] = true
			}
			if len(seen) != receivers {
				t.Fatalf("run %d: receivers got %v", run, seen)
			}
			c.conn.Close()
		}
	}})

	// The connection's context carries the request's values.
	cases = append(cases, testCase{"conn/context_keeps_request_values", func(t *testing.T, k *kit) {
		type userKey struct{}
		got := make(chan any, 1)
		s := k.serve(testOptions(), func(r *api.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "ada")))
				})
			})
			r.Handle("/c", func(ws api.Conn) {
				got <- ws.Context().Value(userKey{})
				ws.Receive()
			})
		})
		c := dial(t, s.addr, "/c")
		if v := within(t, 5*time.Second, got, "context value"); v != "ada" {
			t.Fatalf("ws.Context().Value = %v, want the value middleware put on the request", v)
		}
		c.closeFrame(api.StatusNormalClosure, "")
		c.finishClose(api.StatusNormalClosure)
	}})

	// A pipelining peer that reads its replies is never cut.
	for _, st := range []string{"blocking", "event"} {
		cases = append(cases, testCase{"bounds/pipelining_peer_that_reads_is_never_cut/" + st, func(t *testing.T, k *kit) {
			var h api.Handler = echo
			if st == "event" {
				h = func(ws api.Conn) {
					ws.OnMessage(func(m api.Message) {
						ws.Send(m)
						m.Release()
					})
				}
			}
			s := k.serve(testOptions(), func(r *api.Router) { r.Handle("/echo", h) })
			// The last shape reads late, as a client busy writing its burst
			// does (node's ws): it reads, a little behind.
			for _, shape := range []struct {
				n, size, runs int
				late          time.Duration
			}{{100, 64 << 10, 20, 0}, {8, 1 << 20, 5, 0}, {8, 1 << 20, 3, 300 * time.Millisecond}} {
				n, size := shape.n, shape.size
				msg := encode(true, 0, ws.OpBinary, make([]byte, size))
				for run := range shape.runs {
					c := dial(t, s.addr, "/echo")
					go func() {
						for range n {
							c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
							if _, err := c.conn.Write(msg); err != nil {
								return
							}
						}
					}()
					time.Sleep(shape.late)
					for i := range n {
						f, err := c.read(10 * time.Second)
						if err != nil {
							t.Fatalf("run %d: echo %d: %v", run, i, err)
						}
						if f.h.OpCode != ws.OpBinary || len(f.payload) != size {
							t.Fatalf("run %d: echo %d: got %v of %d bytes (%q)", run, i, f.h.OpCode, len(f.payload), trunc(f.payload))
						}
					}
					c.closeFrame(api.StatusNormalClosure, "")
					c.finishClose(api.StatusNormalClosure)
				}
			}
		}})
	}

	// Start and Shutdown.
	cases = append(cases, testCase{"lifecycle/restart_on_the_same_port", func(t *testing.T, k *kit) {
		s := k.echo(testOptions())
		for range 5 {
			c := dial(t, s.addr, "/echo")
			c.text("x")
			c.expectMessage(ws.OpText, []byte("x"))
			c.closeFrame(api.StatusNormalClosure, "")
			c.finishClose(api.StatusNormalClosure) // the server closes TCP first: its end waits in TIME_WAIT
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.rt.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		r := api.NewRouter()
		r.Handle("/echo", echo)
		rt, err := k.f(r, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		a, err := rt.Start(s.addr)
		if err != nil {
			t.Fatalf("restart on %s right after shutdown: %v", s.addr, err)
		}
		defer rt.Shutdown(context.Background())
		c := dial(t, a.String(), "/echo")
		c.text("again")
		c.expectMessage(ws.OpText, []byte("again"))
		c.closeFrame(api.StatusNormalClosure, "")
		c.finishClose(api.StatusNormalClosure)
	}})
	cases = append(cases, testCase{"lifecycle/requests_while_draining_are_refused_clearly", func(t *testing.T, k *kit) {
		// While Shutdown waits for a peer's answer to its close frame, a new
		// connection is refused (the listener is closed) or answered 503
		// "shutting down": never an empty reply, nor another reason.
		s := k.app(testOptions())
		c := dial(t, s.addr, "/echo") // it will not answer the close frame at once
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- s.rt.Shutdown(ctx)
		}()
		time.Sleep(300 * time.Millisecond)
		key := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		for _, head := range []string{"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", "GET /echo HTTP/1.1\r\nHost: x\r\n" + key + "\r\n"} {
			nc, err := net.DialTimeout("tcp", s.addr, 2*time.Second)
			if err != nil {
				continue // refused: the listener is closed
			}
			nc.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(nc, head)
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			switch {
			case err != nil && errors.Is(err, syscall.ECONNRESET): // refused from the backlog of a closed listener
			case err != nil:
				t.Errorf("%q while draining: %v, want a refusal or 503", head[:10], err)
			default:
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
					t.Errorf("%q while draining: %d %q, want 503 shutting down", head[:10], resp.StatusCode, body)
				}
			}
			nc.Close()
		}
		c.finishClose(api.StatusGoingAway)
		if err := within(t, 5*time.Second, done, "Shutdown"); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}})
	cases = append(cases, testCase{"lifecycle/shutdown_right_after_start_stops", func(t *testing.T, k *kit) {
		// A signal right after start-up: Shutdown must stop a server
		// whose serving goroutine may not have begun yet.
		for i := range 30 {
			rt, err := k.f(api.NewRouter(), testOptions())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				done <- rt.Shutdown(ctx)
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("round %d: Shutdown right after Start: %v", i, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: Shutdown right after Start did not return", i)
			}
		}
	}})
	cases = append(cases, testCase{"lifecycle/start_after_shutdown_fails", func(t *testing.T, k *kit) {
		// A Shutdown that comes first (a signal during start-up) leaves a
		// server that must not look up while it refuses every upgrade.
		rt, err := k.f(api.NewRouter(), testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown before Start: %v", err)
		}
		if a, err := rt.Start("127.0.0.1:0"); err == nil {
			defer rt.Shutdown(context.Background())
			t.Fatalf("Start after Shutdown serves on %v", a)
		} else if !strings.Contains(err.Error(), "after Shutdown") {
			t.Fatalf("Start after Shutdown: %v", err)
		}
	}})
	cases = append(cases, testCase{"lifecycle/shutdown_after_failed_start", func(t *testing.T, k *kit) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		rt, err := k.f(api.NewRouter(), testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Start(l.Addr().String()); err == nil {
			t.Fatal("Start on a port in use succeeded")
		}
		done := make(chan error, 1)
		go func() { done <- rt.Shutdown(context.Background()) }()
		within(t, 5*time.Second, done, "Shutdown after a failed Start")
	}})
	cases = append(cases, testCase{"lifecycle/reuse_port_servers_share_an_address", func(t *testing.T, k *kit) {
		o := testOptions()
		o.ReusePort = true
		hits := make([]atomic.Int64, 2)
		var addr string
		for i := range hits {
			r := api.NewRouter()
			r.Handle("/echo", func(ws api.Conn) {
				hits[i].Add(1)
				echo(ws)
			})
			rt, err := k.f(r, o)
			if err != nil {
				t.Fatal(err)
			}
			if addr == "" {
				addr = freePort(t)
			}
			if _, err := rt.Start(addr); err != nil {
				t.Fatalf("server %d on %s with ReusePort: %v", i, addr, err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				rt.Shutdown(ctx)
			}()
		}
		// The kernel spreads connections by their source port: both
		// servers get some of 64.
		for range 64 {
			c := dial(t, addr, "/echo")
			c.text("hi")
			c.expectMessage(ws.OpText, []byte("hi"))
			c.closeFrame(api.StatusNormalClosure, "")
			c.expectClose(api.StatusNormalClosure)
			c.expectEOF()
		}
		if hits[0].Load() == 0 || hits[1].Load() == 0 {
			t.Fatalf("connections per server: %d and %d", hits[0].Load(), hits[1].Load())
		}
	}})
	return cases
}

// freePort is a loopback address with a port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// floodAndMeasure writes msg to path again and again, reading nothing,
// until the server stops taking bytes, closes the connection, or limit
// bytes went out. It returns the most bytes the server held at once: the
// growth of the live heap of this process (which runs the server),
// sampled after a collection each time a chunk of the flood went out.
// Bytes the server read and
// dropped (pings answered by one held pong, data after its close frame)
// are not held. Held means present in two samples in a row: the server
// allocates on while a sample's collection runs, and under CPU contention
// one sample now and then caught 3-4 MiB in flight that the next one did
// not (a gnet ping flood read 2.2, 2.5, 5.9, 2.7 MiB); what the server
// keeps, or keeps growing, is in both. The price: the last sample before
// a cut counts only as far as the one before it (one chunk less).
// floodUntilCut writes 64 KiB frames, at most 256 MiB, until the server
// cuts the connection, and fails past what a server takes once a
// connection began to end (o's ReadLimit or InboxBytes, the kernel's
// share it allows, 16 MiB, and what the sockets' buffers hold).
func floodUntilCut(t *testing.T, c *client, o api.Options, after string) {
	t.Helper()
	frame := encode(true, 0, ws.OpBinary, make([]byte, 64<<10))
	const most = 256 << 20
	start := time.Now()
	var sent int64
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for sent < most {
		n, err := c.conn.Write(frame)
		sent += int64(n)
		if err != nil {
			break
		}
	}
	bound := max(o.ReadLimit, api.DefaultInboxBytes) + 48<<20
	t.Logf("the server took %d KiB after %s, in %v, before it cut the peer (bound %d KiB)", sent>>10, after, time.Since(start), bound>>10)
	if sent > bound {
		t.Fatalf("the server read %d bytes after %s, bound %d", sent, after, bound)
	}
}

func floodAndMeasure(t *testing.T, addr, path string, msg []byte, limit int64) int64 {
	t.Helper()
	const chunk = 256 << 10
	stream := bytes.Repeat(msg, max(1, chunk/len(msg)))
	base := liveHeap()
	c := dial(t, addr, path)
	defer c.conn.Close()
	var most, written int64
	prev := int64(-1)
	var stalled time.Duration
	for off := 0; written < limit; {
		end := min(off+chunk, len(stream))
		c.conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.conn.Write(stream[off:end])
		written += int64(n)
		off = (off + n) % len(stream)
		held := liveHeap() - base
		if prev >= 0 {
			most = max(most, min(prev, held))
		}
		prev = held
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if n == 0 {
					stalled += 50 * time.Millisecond
				} else {
					stalled = 0
				}
				if stalled > time.Second {
					break // the server stopped taking bytes: it is bounded
				}
				continue
			}
			break // the server closed the connection
		}
		stalled = 0
	}
	return most
}

// liveHeap is the bytes of live heap after two collections (the second
// empties the victim caches of sync.Pools: buffers kept for reuse are not
// held for a peer).
func liveHeap() int64 {
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
