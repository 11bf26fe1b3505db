package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/klauspost/compress/flate"

	"github.com/wsmatrix/wsmatrix/api"
)

func TestNegotiateDeflate(t *testing.T) {
	tests := []struct {
		name     string
		offers   []string
		takeover bool
		want     string // "" when nothing is accepted
	}{
		{"chromium's offer, no context takeover", []string{"permessage-deflate; client_max_window_bits"}, false,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"chromium's offer, context takeover", []string{"permessage-deflate; client_max_window_bits"}, true,
			"permessage-deflate"},
		{"client asks server_no_context_takeover", []string{"permessage-deflate; server_no_context_takeover"}, true,
			"permessage-deflate; server_no_context_takeover"},
		{"client offers its own no context takeover", []string{"permessage-deflate; client_no_context_takeover"}, true,
			"permessage-deflate; client_no_context_takeover"},
		{"small server window is honoured without context takeover", []string{"permessage-deflate; server_max_window_bits=9"}, true,
			"permessage-deflate; server_no_context_takeover; server_max_window_bits=9"},
		{"client window hint is echoed", []string{"permessage-deflate; client_max_window_bits=10"}, true,
			"permessage-deflate; client_max_window_bits=10"},
		{"all four", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11"}, true,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11"},
		{"quoted value", []string{`permessage-deflate; server_max_window_bits="10"`}, false,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"},
		{"first honourable offer of several in one header", []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate; unknown=1, permessage-deflate; client_max_window_bits"}, true,
			"permessage-deflate"},
		{"offers over several headers", []string{"x-webkit-deflate-frame", "permessage-deflate; server_max_window_bits=16", "permessage-deflate"}, true,
			"permessage-deflate"},
		{"repeated parameter declines", []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, false, ""},
		{"server_max_window_bits without value declines", []string{"permessage-deflate; server_max_window_bits"}, false, ""},
		{"window with a leading zero declines", []string{"permessage-deflate; client_max_window_bits=09"}, false, ""},
		{"value on a flag declines", []string{"permessage-deflate; client_no_context_takeover=1"}, false, ""},
		{"other extensions only", []string{"x-custom; a=1"}, false, ""},
		{"malformed header", []string{"permessage-deflate; =;;"}, false, ""},
		{"no offer", nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, ok := NegotiateDeflate(tt.offers, tt.takeover)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("NegotiateDeflate(%q) = %q %v, want %q", tt.offers, got, ok, tt.want)
			}
		})
	}
}

// deflateRaw compresses p as a peer would: one stream, sync flushed, the
// trailing marker stripped.
func deflateRaw(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, 5)
	w.Write(p)
	w.Flush()
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("no sync marker: % x", out[len(out)-4:])
	}
	return out[:len(out)-4]
}

func TestCompressInflateRoundTrip(t *testing.T) {
	msg := []byte(strings.Repeat(`{"user":"ada","text":"héllo wörld","n":12345},`, 40))
	for _, tt := range []struct {
		name  string
		level int
		bits  int
		dict  []byte
	}{
		{"level 1", 1, 15, nil}, {"level 9", 9, 15, nil}, {"window 9 bits", 1, 9, nil},
		{"stateless with a window", 0, 15, msg[:300]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Compress(nil, msg, tt.level, tt.bits, tt.dict)
			if len(c) >= len(msg)/2 {
				t.Fatalf("%d bytes compressed to %d", len(msg), len(c))
			}
			got, err := Inflate(nil, c, tt.dict, 1<<20, true)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("round trip: %v, equal %v", err, bytes.Equal(got, msg))
			}
		})
	}
	// A peer's stream, with the window of the message before (context
	// takeover).
	first := deflateRaw(t, msg)
	got, err := Inflate(nil, first, nil, 0, false)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("peer stream: %v", err)
	}
}

func TestInflateBounds(t *testing.T) {
	bomb := deflateRaw(t, make([]byte, 64<<20)) // 64 MiB of zeros in about 64 KiB
	got, err := Inflate(nil, bomb, nil, 1<<20, false)
	var ce *api.CloseError
	if !errors.As(err, &ce) || ce.Code != api.StatusMessageTooBig {
		t.Fatalf("bomb: %v, want 1009", err)
	}
	if len(got) > 1<<20+64<<10 {
		t.Fatalf("inflated %d bytes before stopping at a 1 MiB limit", len(got))
	}
	if _, err := Inflate(nil, []byte{0xff, 0xff, 0xff}, nil, 0, false); !errors.As(err, &ce) || ce.Code != api.StatusInvalidFramePayloadData {
		t.Fatalf("corrupt stream: %v, want 1007", err)
	}
	// Invalid UTF-8 is found as it inflates, before the rest is inflated.
	bad := deflateRaw(t, append([]byte{'a', 0xff}, make([]byte, 32<<20)...))
	got, err = Inflate(nil, bad, nil, 0, true)
	if !errors.As(err, &ce) || ce.Code != api.StatusInvalidFramePayloadData {
		t.Fatalf("bad UTF-8: %v, want 1007", err)
	}
	if len(got) > 1<<20 {
		t.Fatalf("inflated %d bytes past a bad byte at offset 1", len(got))
	}
}

func TestParserRSV1(t *testing.T) {
	frame := func(fin bool, rsv byte, op ws.OpCode, p []byte) []byte {
		return clientFrame(fin, rsv, op, p)
	}
	for _, tt := range []struct {
		name    string
		deflate bool
		in      []byte
		code    api.StatusCode // 0: parses
	}{
		{"rsv1 without the extension", false, frame(true, 4, ws.OpText, []byte("x")), 1002},
		{"rsv1 on a first frame", true, frame(true, 4, ws.OpText, []byte("x")), 0},
		{"rsv1 on a continuation", true, cat(frame(false, 4, ws.OpText, []byte("x")), frame(true, 4, ws.OpContinuation, []byte("y"))), 1002},
		{"rsv1 on a ping", true, frame(true, 4, ws.OpPing, nil), 1002},
		{"rsv2", true, frame(true, 2, ws.OpText, []byte("x")), 1002},
		{"compressed text is not checked as text", true, frame(true, 4, ws.OpText, []byte{0xff, 0xfe}), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(0, tt.deflate)
			in := tt.in
			var err error
			for len(in) > 0 && err == nil {
				var n int
				n, err = p.Parse(in, new(Event))
				in = in[n:]
				if n == 0 {
					break
				}
			}
			var ce *api.CloseError
			switch {
			case tt.code == 0 && err != nil:
				t.Fatalf("error %v", err)
			case tt.code != 0 && (!errors.As(err, &ce) || ce.Code != tt.code):
				t.Fatalf("got %v, want %d", err, tt.code)
			}
		})
	}
}
