package runtimetest

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"io"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// The kit compresses and inflates with the standard library's
// compress/flate: an encoder independent of the engine's.

// deflatePeer is the client side of permessage-deflate.
type deflatePeer struct {
	takeover bool          // the client keeps its compressor between messages
	w        *flate.Writer // with takeover
	out      bytes.Buffer
	recvDict []byte // the server's messages so far, with server context takeover
	serverCT bool   // the server keeps its window
	lastWire int    // the compressed size of the last message inflated
}

func (d *deflatePeer) compress(t testing.TB, p []byte) []byte {
	t.Helper()
	if d.w == nil || !d.takeover {
		d.out.Reset()
		d.w, _ = flate.NewWriter(&d.out, 6)
	}
	start := d.out.Len()
	d.w.Write(p)
	d.w.Flush()
	b := d.out.Bytes()[start:]
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("no sync marker")
	}
	return append([]byte(nil), b[:len(b)-4]...)
}

func (d *deflatePeer) inflate(t testing.TB, p []byte) []byte {
	t.Helper()
	d.lastWire = len(p)
	in := append(append([]byte(nil), p...), 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)
	var dict []byte
	if d.serverCT {
		dict = d.recvDict
	}
	out, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(in), dict))
	if err != nil {
		t.Fatalf("inflating the server's frame: %v", err)
	}
	if d.serverCT {
		d.recvDict = append(d.recvDict, out...)
		if len(d.recvDict) > 32<<10 {
			d.recvDict = d.recvDict[len(d.recvDict)-32<<10:]
		}
	}
	return out
}

// sendCompressed sends p as one compressed message, in frames of at most
// split bytes of compressed payload, with a ping between the first two.
func (c *client) sendCompressed(d *deflatePeer, op ws.OpCode, p []byte, split int) {
	c.t.Helper()
	z := d.compress(c.t, p)
	if split <= 0 || split >= len(z) {
		c.write(encode(true, 4, op, z))
		return
	}
	var b []byte
	for i := 0; i < len(z); i += split {
		chunk := z[i:min(i+split, len(z))]
		fin := i+split >= len(z)
		switch {
		case i == 0:
			b = append(b, encode(fin, 4, op, chunk)...) // RSV1 on the first frame only
			b = append(b, encode(true, 0, ws.OpPing, []byte("between"))...)
		default:
			b = append(b, encode(fin, 0, ws.OpContinuation, chunk)...)
		}
	}
	c.write(b)
}

// nextMessage reads the next data frame, inflating it when it is
// compressed; it reports whether it was.
func (c *client) nextMessage(d *deflatePeer) (ws.OpCode, []byte, bool) {
	c.t.Helper()
	f := c.next()
	if f.h.Rsv&4 != 0 {
		return f.h.OpCode, d.inflate(c.t, f.payload), true
	}
	return f.h.OpCode, f.payload, false
}

func deflateCases() []testCase {
	var cases []testCase
	echoEventReleasing := func(ws api.Conn) {
		ws.OnMessage(func(m api.Message) {
			ws.Send(m)
			m.Release() // what a compressed send keeps is its own
		})
	}
	modes := []struct {
		name     string
		mode     api.Compression
		takeover bool
	}{
		{"no_context_takeover", api.CompressionNoContextTakeover, false},
		{"context_takeover", api.CompressionContextTakeover, true},
	}
	for _, m := range modes {
		for _, st := range []string{"blocking", "event"} {
			cases = append(cases, testCase{"deflate/echo/" + m.name + "/" + st, func(t *testing.T, k *kit) {
				o := testOptions()
				o.Compression = m.mode
				h := api.Handler(echo)
				if st == "event" {
					h = echoEventReleasing
				}
				s := k.serve(o, func(r *api.Router) { r.Handle("/echo", h) })
				c := dial(t, s.addr, "/echo", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
				ext := c.resp.Header.Get("Sec-WebSocket-Extensions")
				want := "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
				if m.takeover {
					want = "permessage-deflate"
				}
				if ext != want {
					t.Fatalf("Sec-WebSocket-Extensions %q, want %q", ext, want)
				}
				d := &deflatePeer{takeover: m.takeover, serverCT: m.takeover}
				msg := []byte(strings.Repeat(`{"event":"tick","user":"ada","text":"héllo"}`, 40))
				for i := range 4 { // with takeover, later messages refer to earlier ones both ways
					c.sendCompressed(d, ws.OpText, append(msg, byte('0'+i)), 0)
					op, got, compressed := c.nextMessage(d)
					if op != ws.OpText || !compressed || !bytes.Equal(got, append(msg, byte('0'+i))) {
						t.Fatalf("message %d: op %v compressed %v equal %v", i, op, compressed, bytes.Equal(got, append(msg, byte('0'+i))))
					}
					if d.lastWire > len(msg)/4 { // 40 copies of one line: any deflate encoder takes it to a small fraction
						t.Fatalf("message %d: %d bytes went out as %d compressed", i, len(msg)+1, d.lastWire)
					}
				}
				c.sendCompressed(d, ws.OpBinary, []byte("tiny"), 0) // under the threshold: sent back uncompressed
				if op, got, compressed := c.nextMessage(d); op != ws.OpBinary || compressed || string(got) != "tiny" {
					t.Fatalf("small message: op %v compressed %v %q", op, compressed, got)
				}
				c.text("plain too") // a client may send any message uncompressed
				if _, got, _ := c.nextMessage(d); string(got) != "plain too" {
					t.Fatalf("uncompressed message: %q", got)
				}
				c.closeFrame(api.StatusNormalClosure, "")
				c.finishClose(api.StatusNormalClosure)
			}})
		}
	}
	cases = append(cases,
		testCase{"deflate/fragmented_with_a_ping_between_fragments", func(t *testing.T, k *kit) {
			o := testOptions()
			o.Compression = api.CompressionNoContextTakeover
			s := k.echo(o)
			c := dial(t, s.addr, "/echo", "Sec-WebSocket-Extensions: permessage-deflate")
			d := &deflatePeer{}
			msg := make([]byte, 20000)
			rand.Read(msg[:5000]) // some of it does not compress
			c.sendCompressed(d, ws.OpBinary, msg, 1000)
			if f := c.nextAny(); f.h.OpCode != ws.OpPong || string(f.payload) != "between" {
				t.Fatalf("got %v %q, want the pong", f.h.OpCode, f.payload)
			}
			if _, got, _ := c.nextMessage(d); !bytes.Equal(got, msg) {
				t.Fatalf("fragmented compressed message: %d bytes back, want %d", len(got), len(msg))
			}
		}},
		testCase{"deflate/off_answers_without_the_extension", func(t *testing.T, k *kit) {
			s := k.echo(testOptions())
			c := dial(t, s.addr, "/echo", "Sec-WebSocket-Extensions: permessage-deflate")
			if ext := c.resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
				t.Fatalf("Sec-WebSocket-Extensions %q with compression off", ext)
			}
			c.write(encode(true, 4, ws.OpText, (&deflatePeer{}).compress(t, []byte("x"))))
			c.finishClose(api.StatusProtocolError)
		}},
		testCase{"deflate/small_server_window_is_kept", func(t *testing.T, k *kit) {
			o := testOptions()
			o.Compression = api.CompressionContextTakeover
			s := k.echo(o)
			c := dial(t, s.addr, "/echo", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9; client_max_window_bits=9")
			if ext := c.resp.Header.Get("Sec-WebSocket-Extensions"); ext != "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9" {
				t.Fatalf("Sec-WebSocket-Extensions %q", ext)
			}
			// 600 random bytes twice: a 512-byte window cannot reach the first
			// copy from the second, a 32 KiB one could.
			block := make([]byte, 600)
			rand.Read(block)
			msg := append(append([]byte(nil), block...), block...)
			d := &deflatePeer{}
			c.sendCompressed(d, ws.OpBinary, msg, 0)
			f := c.next()
			if f.h.Rsv&4 == 0 || len(f.payload) < 1100 {
				t.Fatalf("compressed %v to %d bytes: the server referred past its 512-byte window", f.h.Rsv&4 != 0, len(f.payload))
			}
			if got := d.inflate(t, f.payload); !bytes.Equal(got, msg) {
				t.Fatal("echo differs")
			}
		}},
	)
	bad := []struct {
		name string
		opts func(*api.Options)
		send func(t *testing.T, c *client)
		code api.StatusCode
	}{
		{"bomb_closes_1009", func(o *api.Options) { o.ReadLimit = 1 << 20 }, func(t *testing.T, c *client) {
			c.write(encode(true, 4, ws.OpBinary, (&deflatePeer{}).compress(t, make([]byte, 64<<20)))) // 64 MiB of zeros, about 64 KiB
		}, api.StatusMessageTooBig},
		{"rsv1_on_a_continuation_1002", nil, func(t *testing.T, c *client) {
			z := (&deflatePeer{}).compress(t, []byte("hello hello"))
			c.write(append(encode(false, 4, ws.OpText, z[:2]), encode(true, 4, ws.OpContinuation, z[2:])...))
		}, api.StatusProtocolError},
		{"rsv1_on_a_ping_1002", nil, func(t *testing.T, c *client) {
			c.write(encode(true, 4, ws.OpPing, nil))
		}, api.StatusProtocolError},
		{"corrupt_data_1007", nil, func(t *testing.T, c *client) {
			c.write(encode(true, 4, ws.OpBinary, []byte{0xff, 0xff, 0xff, 0xff}))
		}, api.StatusInvalidFramePayloadData},
		{"invalid_utf8_after_inflating_1007", nil, func(t *testing.T, c *client) {
			c.write(encode(true, 4, ws.OpText, (&deflatePeer{}).compress(t, []byte{'o', 'k', 0xff})))
		}, api.StatusInvalidFramePayloadData},
	}
	for _, b := range bad {
		cases = append(cases, testCase{"deflate/" + b.name, func(t *testing.T, k *kit) {
			o := testOptions()
			o.Compression = api.CompressionNoContextTakeover
			if b.opts != nil {
				b.opts(&o)
			}
			s := k.echo(o)
			c := dial(t, s.addr, "/echo", "Sec-WebSocket-Extensions: permessage-deflate")
			b.send(t, c)
			c.finishClose(b.code)
		}})
	}
	cases = append(cases, testCase{"deflate/1GiB_bomb_costs_ReadLimit_plus_a_constant", func(t *testing.T, k *kit) {
		const limit = 2 << 20
		o := testOptions()
		o.Compression = api.CompressionNoContextTakeover
		o.ReadLimit = limit
		s := k.echo(o)
		c := dial(t, s.addr, "/echo", "Sec-WebSocket-Extensions: permessage-deflate")
		frame := encode(true, 4, ws.OpBinary, gibBomb(t))
		// Every byte the process allocates while the server takes the
		// frame, inflates it and closes (the client's share is a few
		// hundred bytes): the compressed frame's buffer as it grows (at
		// most doubling: under twice the frame), the inflated output the
		// limit allows (ReadLimit, not a byte more), and a constant.
		before := allocated()
		c.write(frame)
		c.finishClose(api.StatusMessageTooBig)
		took := allocated() - before
		t.Logf("a 1 GiB bomb in a %d-byte frame: %d bytes allocated (ReadLimit %d)", len(frame), took, limit)
		if bound := 2*int64(len(frame)) + limit + 1<<20; took > bound {
			t.Fatalf("the bomb took %d bytes, more than twice the frame (%d) + ReadLimit (%d) + 1 MiB", took, len(frame), limit)
		}
	}})
	return cases
}

// gibBomb is a permessage-deflate payload (without the final sync marker)
// that inflates to 1 GiB of zeros: 1,024 independent flushed segments of
// 1 MiB each, about 1 MiB in all.
func gibBomb(t testing.TB) []byte {
	var seg bytes.Buffer
	w, _ := flate.NewWriter(&seg, flate.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Flush()
	return bytes.Repeat(seg.Bytes(), 1024)[:1024*seg.Len()-4]
}

// allocated is the bytes the process has allocated on the heap so far.
func allocated() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

func preparedCases() []testCase {
	return []testCase{{"deflate/prepared_message_to_every_kind_of_connection", func(t *testing.T, k *kit) {
		o := testOptions()
		o.Compression = api.CompressionContextTakeover
		joined := make(chan api.Conn, 8)
		s := k.serve(o, func(r *api.Router) {
			r.Handle("/sub", func(ws api.Conn) {
				joined <- ws
				ws.Receive()
			})
		})
		offers := []string{
			"",                   // plain
			"permessage-deflate", // context takeover: compressed for it alone
			"permessage-deflate; server_no_context_takeover",                             // a shared compressed frame
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover", // the same frame
			"permessage-deflate; server_max_window_bits=9",                               // another shared frame
		}
		var clients []*client
		var conns []api.Conn
		for _, offer := range offers {
			var extra []string
			if offer != "" {
				extra = append(extra, "Sec-WebSocket-Extensions: "+offer)
			}
			clients = append(clients, dial(t, s.addr, "/sub", extra...))
			conns = append(conns, within(t, 5*time.Second, joined, "the handler"))
		}
		msg := api.TextMessage(strings.Repeat("broadcast to all, framed once per kind; ", 50))
		pm := api.NewPreparedMessage(msg)
		for range 2 { // the second time reuses the frames built the first
			for _, ws := range conns {
				if err := ws.SendPrepared(pm); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, c := range clients {
			d := &deflatePeer{serverCT: offers[i] == "permessage-deflate"}
			for n := range 2 {
				op, got, compressed := c.nextMessage(d)
				if op != ws.OpText || string(got) != msg.String() || compressed != (offers[i] != "") {
					t.Fatalf("client %d (%q), message %d: op %v compressed %v equal %v", i, offers[i], n, op, compressed, string(got) == msg.String())
				}
			}
		}
	}}}
}
