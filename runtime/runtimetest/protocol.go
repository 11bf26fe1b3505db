package runtimetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// protocolCase sends frames to a blocking echo and expects a close code,
// or, with code 0, the echoed messages in want.
type protocolCase struct {
	name string
	opts func(*api.Options)
	send func(c *client)
	code api.StatusCode
	want []frame // with code 0: messages expected back, in order
}

func txt(s string) frame {
	return frame{h: ws.Header{OpCode: ws.OpText, Fin: true}, payload: []byte(s)}
}
func bin(p []byte) frame { return frame{h: ws.Header{OpCode: ws.OpBinary, Fin: true}, payload: p} }

func raw(fin bool, rsv byte, op ws.OpCode, p []byte) func(c *client) {
	return func(c *client) { c.write(encode(fin, rsv, op, p)) }
}

func seq(fs ...func(c *client)) func(c *client) {
	return func(c *client) {
		for _, f := range fs {
			f(c)
		}
	}
}

// unmasked returns a client frame without a mask.
func unmasked(op ws.OpCode, p []byte) []byte {
	var b bytes.Buffer
	ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: op, Length: int64(len(p))})
	b.Write(p)
	return b.Bytes()
}

func protocolCases() []testCase {
	pcs := []protocolCase{
		// Framing rules (RFC 6455 5.2, 5.3, 5.5): 1002.
		{name: "unmasked frame", send: func(c *client) { c.write(unmasked(ws.OpText, []byte("hi"))) }, code: api.StatusProtocolError},
		{name: "rsv1 without extension", send: raw(true, 4, ws.OpText, []byte("x")), code: api.StatusProtocolError},
		{name: "rsv2", send: raw(true, 2, ws.OpText, []byte("x")), code: api.StatusProtocolError},
		{name: "rsv3", send: raw(true, 1, ws.OpBinary, []byte("x")), code: api.StatusProtocolError},
		{name: "control frame over 125 bytes", send: raw(true, 0, ws.OpPing, make([]byte, 126)), code: api.StatusProtocolError},
		{name: "fragmented ping", send: raw(false, 0, ws.OpPing, []byte("p")), code: api.StatusProtocolError},
		{name: "fragmented close", send: raw(false, 0, ws.OpClose, closeBody(1000, "")), code: api.StatusProtocolError},
		{name: "continuation without start", send: raw(true, 0, ws.OpContinuation, []byte("x")), code: api.StatusProtocolError},
		{name: "text inside fragmented text", send: seq(raw(false, 0, ws.OpText, []byte("a")), raw(true, 0, ws.OpText, []byte("b"))), code: api.StatusProtocolError},
		{name: "binary inside fragmented text", send: seq(raw(false, 0, ws.OpText, []byte("a")), raw(true, 0, ws.OpBinary, []byte("b"))), code: api.StatusProtocolError},
		{name: "64-bit length with top bit set", send: func(c *client) {
			h := []byte{0x82, 0xFF}
			h = binary.BigEndian.AppendUint64(h, 1<<63|5)
			c.write(append(h, 1, 2, 3, 4))
		}, code: api.StatusProtocolError},
		// UTF-8 (RFC 6455 8.1): 1007.
		{name: "invalid utf8 text", send: raw(true, 0, ws.OpText, []byte("a\xffb")), code: api.StatusInvalidFramePayloadData},
		{name: "invalid utf8 fails fast before the last fragment", send: raw(false, 0, ws.OpText, []byte("ok\xc0\xafmore")), code: api.StatusInvalidFramePayloadData},
		{name: "utf8 surrogate", send: raw(true, 0, ws.OpText, []byte("\xed\xa0\x80")), code: api.StatusInvalidFramePayloadData},
		{name: "utf8 overlong", send: raw(true, 0, ws.OpText, []byte("\xc0\xaf")), code: api.StatusInvalidFramePayloadData},
		{name: "utf8 above U+10FFFF", send: raw(true, 0, ws.OpText, []byte("\xf4\x90\x80\x80")), code: api.StatusInvalidFramePayloadData},
		{name: "utf8 truncated at message end", send: raw(true, 0, ws.OpText, []byte("abc\xe2\x82")), code: api.StatusInvalidFramePayloadData},
		{name: "utf8 truncated at end of fragmented message", send: seq(raw(false, 0, ws.OpText, []byte("\xe2")), raw(true, 0, ws.OpContinuation, []byte("\x82"))), code: api.StatusInvalidFramePayloadData},
		{name: "utf8 invalid prefix split over fragments fails fast", send: raw(false, 0, ws.OpText, []byte("\xf4\x90")), code: api.StatusInvalidFramePayloadData},
		{name: "close reason not utf8", send: raw(true, 0, ws.OpClose, append(closeBody(1000, ""), 0xff)), code: api.StatusInvalidFramePayloadData},
		// Close frames (RFC 6455 5.5.1, 7.4): 1002.
		{name: "close payload of one byte", send: raw(true, 0, ws.OpClose, []byte{3}), code: api.StatusProtocolError},
		// Limits: 1009, decided from the header.
		{name: "frame over read limit rejected from header", opts: func(o *api.Options) { o.ReadLimit = 1024 }, send: func(c *client) {
			h := []byte{0x82, 0xFF} // masked, 64-bit length, no payload sent at all
			h = binary.BigEndian.AppendUint64(h, 1<<40)
			c.write(append(h, 1, 2, 3, 4))
		}, code: api.StatusMessageTooBig},
		{name: "fragments over read limit", opts: func(o *api.Options) { o.ReadLimit = 1024 }, send: seq(
			raw(false, 0, ws.OpBinary, make([]byte, 600)), raw(true, 0, ws.OpContinuation, make([]byte, 600))), code: api.StatusMessageTooBig},
		{name: "message at read limit passes", opts: func(o *api.Options) { o.ReadLimit = 1024 },
			send: raw(true, 0, ws.OpBinary, bytes.Repeat([]byte{7}, 1024)), want: []frame{bin(bytes.Repeat([]byte{7}, 1024))}},
		// Valid traffic.
		{name: "empty text", send: raw(true, 0, ws.OpText, nil), want: []frame{txt("")}},
		{name: "empty binary", send: raw(true, 0, ws.OpBinary, nil), want: []frame{bin([]byte{})}},
		{name: "utf8 split inside a character across fragments", send: seq(
			raw(false, 0, ws.OpText, []byte("h\xe2")), raw(false, 0, ws.OpContinuation, []byte("\x82")), raw(true, 0, ws.OpContinuation, []byte("\xacllo"))),
			want: []frame{txt("h€llo")}},
		{name: "fragmented binary of 100 fragments", send: func(c *client) {
			c.write(encode(false, 0, ws.OpBinary, []byte{0}))
			for i := 1; i < 99; i++ {
				c.write(encode(false, 0, ws.OpContinuation, []byte{byte(i)}))
			}
			c.write(encode(true, 0, ws.OpContinuation, []byte{99}))
		}, want: []frame{bin(seqBytes(100))}},
		{name: "empty fragments", send: seq(raw(false, 0, ws.OpText, nil), raw(false, 0, ws.OpContinuation, []byte("x")), raw(true, 0, ws.OpContinuation, nil)), want: []frame{txt("x")}},
		{name: "ping inside fragmented message", send: seq(
			raw(false, 0, ws.OpText, []byte("frag")), raw(true, 0, ws.OpPing, []byte("p")), raw(true, 0, ws.OpContinuation, []byte("ment"))),
			want: []frame{{h: ws.Header{OpCode: ws.OpPong, Fin: true}, payload: []byte("p")}, txt("fragment")}},
		{name: "unsolicited pong ignored", send: seq(raw(true, 0, ws.OpPong, []byte("x")), raw(true, 0, ws.OpText, []byte("after"))), want: []frame{txt("after")}},
		{name: "ping of 125 bytes", send: raw(true, 0, ws.OpPing, bytes.Repeat([]byte("p"), 125)),
			want: []frame{{h: ws.Header{OpCode: ws.OpPong, Fin: true}, payload: bytes.Repeat([]byte("p"), 125)}}},
		{name: "empty ping", send: raw(true, 0, ws.OpPing, nil), want: []frame{{h: ws.Header{OpCode: ws.OpPong, Fin: true}, payload: []byte{}}}},
		{name: "message of 1 MiB", send: raw(true, 0, ws.OpBinary, seqBytes(1<<20)), want: []frame{bin(seqBytes(1 << 20))}},
		{name: "frames byte by byte", send: func(c *client) {
			for _, b := range append(encode(true, 0, ws.OpText, []byte("slow")), encode(true, 0, ws.OpBinary, []byte{1, 2})...) {
				c.write([]byte{b})
				time.Sleep(time.Millisecond)
			}
		}, want: []frame{txt("slow"), bin([]byte{1, 2})}},
		{name: "many frames in one write", send: func(c *client) {
			var b []byte
			for i := range 200 {
				b = append(b, encode(true, 0, ws.OpText, []byte(fmt.Sprint(i)))...)
			}
			c.write(b)
		}, want: func() (fs []frame) {
			for i := range 200 {
				fs = append(fs, txt(fmt.Sprint(i)))
			}
			return fs
		}()},
	}
	// Reserved opcodes 3-7 and 11-15.
	for _, op := range []ws.OpCode{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		pcs = append(pcs, protocolCase{name: fmt.Sprintf("reserved opcode %d", op), send: raw(true, 0, op, nil), code: api.StatusProtocolError})
	}
	// Close codes that may not be sent: 1002.
	for _, code := range []api.StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		pcs = append(pcs, protocolCase{name: fmt.Sprintf("invalid close code %d", code), send: raw(true, 0, ws.OpClose, closeBody(code, "")), code: api.StatusProtocolError})
	}

	var cases []testCase
	for _, pc := range pcs {
		cases = append(cases, testCase{name: "protocol/" + strings.ReplaceAll(pc.name, " ", "_"), run: func(t *testing.T, k *kit) {
			o := testOptions()
			if pc.opts != nil {
				pc.opts(&o)
			}
			s := k.echo(o)
			c := dial(t, s.addr, "/echo")
			pc.send(c)
			if pc.code != 0 {
				c.finishClose(pc.code)
				return
			}
			for _, w := range pc.want {
				f := c.nextAny()
				if f.h.OpCode != w.h.OpCode || !bytes.Equal(f.payload, w.payload) || !f.h.Fin {
					t.Fatalf("got op=%v fin=%v %q, want op=%v %q", f.h.OpCode, f.h.Fin, trunc(f.payload), w.h.OpCode, trunc(w.payload))
				}
			}
			c.closeFrame(api.StatusNormalClosure, "")
			c.finishClose(api.StatusNormalClosure)
		}})
	}
	// Close codes that may be sent are echoed.
	for _, code := range []api.StatusCode{1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999} {
		cases = append(cases, testCase{name: fmt.Sprintf("protocol/close_code_%d_echoed", code), run: func(t *testing.T, k *kit) {
			gotErr := make(chan error, 1)
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Handle("/echo", func(ws api.Conn) {
					_, err := ws.Receive()
					gotErr <- err
				})
			})
			c := dial(t, s.addr, "/echo")
			c.closeFrame(code, "bye")
			c.finishClose(code)
			checkCloseErr(t, within(t, 5*time.Second, gotErr, "handler error"), code, "bye")
		}})
	}
	cases = append(cases, testCase{name: "protocol/empty_close_frame", run: func(t *testing.T, k *kit) {
		gotErr := make(chan error, 1)
		s := k.serve(testOptions(), func(r *api.Router) {
			r.Handle("/echo", func(ws api.Conn) { _, err := ws.Receive(); gotErr <- err })
		})
		c := dial(t, s.addr, "/echo")
		c.frame(true, ws.OpClose, nil)
		c.finishClose(api.StatusNoStatusReceived) // an empty close is answered with an empty close
		checkCloseErr(t, within(t, 5*time.Second, gotErr, "handler error"), api.StatusNoStatusReceived, "")
	}})
	// Messages that came before the peer's close frame are the handler's,
	// and its answers go out before the close frame that answers the
	// peer's (RFC 6455 5.5.1 lets an endpoint finish what it sends first),
	// as they do before a protocol error's.
	for _, st := range []string{"blocking", "event"} {
		cases = append(cases, testCase{name: "protocol/messages_before_the_peers_close_are_answered/" + st, run: func(t *testing.T, k *kit) {
			var h api.Handler = echo
			if st == "event" {
				h = echoEvent
			}
			s := k.serve(testOptions(), func(r *api.Router) { r.Handle("/echo", h) })
			c := dial(t, s.addr, "/echo")
			c.text("p0") // the handler takes messages (OnMessage registered, or Receive called)
			c.expectMessage(ws.OpText, []byte("p0"))
			var b []byte
			for _, p := range []string{"p1", "p2", "p3"} {
				b = append(b, encode(true, 0, ws.OpText, []byte(p))...)
			}
			c.write(append(b, encode(true, 0, ws.OpClose, closeBody(api.StatusGoingAway, "bye"))...))
			for _, p := range []string{"p1", "p2", "p3"} {
				c.expectMessage(ws.OpText, []byte(p))
			}
			c.expectClose(api.StatusGoingAway)
			c.expectEOF()
		}})
	}
	cases = append(cases, testCase{name: "protocol/data_after_close_ignored", run: func(t *testing.T, k *kit) {
		got := make(chan int, 1)
		s := k.serve(testOptions(), func(r *api.Router) {
			r.Handle("/echo", func(ws api.Conn) {
				n := 0
				for {
					if _, err := ws.Receive(); err != nil {
						got <- n
						return
					}
					n++
				}
			})
		})
		c := dial(t, s.addr, "/echo")
		c.write(append(append(encode(true, 0, ws.OpText, []byte("one")), encode(true, 0, ws.OpClose, closeBody(1000, ""))...), encode(true, 0, ws.OpText, []byte("late"))...))
		c.finishClose(api.StatusNormalClosure)
		if n := within(t, 5*time.Second, got, "handler"); n != 1 {
			t.Fatalf("handler received %d messages, want 1 (data after close must be ignored)", n)
		}
	}})
	return cases
}

// nextAny returns the next frame, pongs included, skipping server pings.
func (c *client) nextAny() frame {
	c.t.Helper()
	for {
		f, err := c.read(10 * time.Second)
		if err != nil {
			c.t.Fatalf("read frame: %v", err)
		}
		if f.h.OpCode == ws.OpPing {
			continue
		}
		return f
	}
}

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func checkCloseErr(t *testing.T, err error, code api.StatusCode, reason string) {
	t.Helper()
	var ce *api.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("handler got %T %v, want *api.CloseError", err, err)
	}
	if ce.Code != code || (reason != "" && ce.Reason != reason) {
		t.Fatalf("handler got close %v %q, want %v %q", ce.Code, ce.Reason, code, reason)
	}
}
