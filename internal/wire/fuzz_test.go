package wire

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// FuzzParser feeds arbitrary client bytes to the frame parser, whole and
// in pieces: it must never panic, never consume more than it is given, and
// reach the same messages, control frames and error however the input is
// split.
func FuzzParser(f *testing.F) {
	f.Add(clientFrame(true, 0, ws.OpText, []byte("hello")), uint8(1), int64(0))
	f.Add(cat(clientFrame(false, 0, ws.OpText, []byte{0xE2}), clientFrame(true, 0, ws.OpPing, nil), clientFrame(true, 0, ws.OpContinuation, []byte{0x82, 0xAC})), uint8(3), int64(0))
	f.Add(clientFrame(true, 0, ws.OpBinary, make([]byte, 300)), uint8(7), int64(100))
	f.Add(clientFrame(true, 0, ws.OpClose, []byte{0x03, 0xE8, 'x'}), uint8(2), int64(0))
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint8(1), int64(0))
	f.Add(clientFrame(true, 0, ws.OpText, []byte{0xF4, 0x90, 0x80, 0x80}), uint8(5), int64(0))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, limit int64) {
		if limit < 0 {
			limit = -limit
		}
		whole := run(limit, bytes.Clone(in), 0)
		split := run(limit, bytes.Clone(in), int(chunk)+1)
		if whole.code != split.code || !equal(whole.msgs, split.msgs) || !equal(whole.controls, split.controls) {
			t.Fatalf("split by %d changes the outcome:\nwhole %+v\nsplit %+v", int(chunk)+1, whole, split)
		}
		for _, m := range whole.msgs {
			if len(m) > 5 && m[:5] == "text:" && !utf8.ValidString(m[5:]) {
				t.Fatalf("invalid UTF-8 text delivered: %q", m)
			}
			if limit > 0 && int64(len(m)) > limit+7 { // "binary:" prefix
				t.Fatalf("message of %d bytes passed a limit of %d", len(m), limit)
			}
		}
	})
}

// FuzzUTF8 checks the streaming validator against utf8.Valid at every
// split.
func FuzzUTF8(f *testing.F) {
	f.Add([]byte("h€llo😀"), uint8(2), uint8(5))
	f.Add([]byte("\xed\xa0\x80"), uint8(1), uint8(2))
	f.Add([]byte("\xf4\x90\x80\x80"), uint8(1), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, a, b uint8) {
		i, j := int(a)%(len(in)+1), int(b)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		var v utf8Validator
		ok := v.write(in[:i]) && v.write(in[i:j]) && v.write(in[j:]) && v.complete()
		if ok != utf8.Valid(in) {
			t.Fatalf("%q split at %d,%d: %v, utf8.Valid says %v", in, i, j, ok, !ok)
		}
	})
}

// FuzzReadRequest feeds arbitrary bytes to the upgrade request parser and
// checks request checking on what it accepts: no panic, the head length
// within the input and the bound, and a prefix of a complete head never
// parses as a different request.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85"), uint16(4096))
	f.Add([]byte("GET / HTTP/1.1\nHost: a\n\n"), uint16(64))
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), uint16(4096))
	f.Add([]byte("GET /x HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Protocol: a, b\r\nOrigin: http://a\r\n\r\n"), uint16(100))
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		limit := int(max) + 1
		r, n, err := ReadRequest(in, limit)
		switch {
		case err != nil:
			if r != nil || n != 0 {
				t.Fatal("error with a result")
			}
			return
		case r == nil:
			if n != 0 {
				t.Fatal("incomplete with a length")
			}
			return
		}
		if n <= 0 || n > len(in) || n > limit {
			t.Fatalf("head length %d of %d bytes, limit %d", n, len(in), limit)
		}
		if r2, _, _ := ReadRequest(in[:n-1], limit); r2 != nil {
			t.Fatalf("a head cut one byte short parsed as %s %s", r2.Method, r2.URL)
		}
		CheckRequest(r)
	})
}

// FuzzInflate feeds arbitrary compressed payloads to Inflate, whole and
// with a window: it must never panic, never inflate past its limit by
// more than a chunk, and agree with itself on what is valid text.
func FuzzInflate(f *testing.F) {
	f.Add(deflateRaw(f, []byte("hello hello hello")), int64(100), true)
	f.Add(deflateRaw(f, make([]byte, 1<<20)), int64(1000), false) // a bomb
	f.Add([]byte{0xff, 0x00, 0x12}, int64(0), false)              // corrupt
	f.Add(deflateRaw(f, []byte{'a', 0xff, 'b'}), int64(0), true)  // bad UTF-8
	f.Fuzz(func(t *testing.T, payload []byte, limit int64, text bool) {
		if limit < 0 {
			limit = -limit
		}
		limit %= 1 << 20
		out, err := Inflate(nil, payload, nil, limit, text)
		if limit > 0 && int64(len(out)) > limit+64<<10 {
			t.Fatalf("inflated %d bytes with a limit of %d", len(out), limit)
		}
		if err == nil && text && !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 accepted: %q", out)
		}
		if err == nil {
			// What inflated cleanly compresses and inflates back the same.
			again, err := Inflate(nil, Compress(nil, out, 1, 15, nil), nil, 0, text)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("round trip of %d bytes: %v", len(out), err)
			}
		}
	})
}

// FuzzNegotiateDeflate feeds arbitrary Sec-WebSocket-Extensions values:
// no panic, and what is accepted is well formed and honourable.
func FuzzNegotiateDeflate(f *testing.F) {
	f.Add("permessage-deflate; client_max_window_bits", false)
	f.Add("permessage-deflate; server_max_window_bits=9; client_no_context_takeover, permessage-deflate", true)
	f.Add(`permessage-deflate; server_max_window_bits="10"`, true)
	f.Fuzz(func(t *testing.T, header string, takeover bool) {
		resp, d, ok := NegotiateDeflate([]string{header}, takeover)
		if !ok {
			return
		}
		if !strings.HasPrefix(resp, "permessage-deflate") || d.ServerWindowBits < 8 || d.ServerWindowBits > 15 || d.ClientWindowBits < 8 || d.ClientWindowBits > 15 {
			t.Fatalf("accepted %q as %q %+v", header, resp, d)
		}
		if again, _, ok := NegotiateDeflate([]string{resp}, takeover); !ok || again == "" {
			t.Fatalf("the response %q is not itself an acceptable offer", resp)
		}
	})
}
