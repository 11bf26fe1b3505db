package wire

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/klauspost/compress/flate"

	"github.com/wsmatrix/wsmatrix/api"
)

// Deflate is what permessage-deflate (RFC 7692) negotiated for one
// connection.
type Deflate struct {
	// ServerNoContextTakeover: every message the server sends is
	// compressed on its own.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: every message the client sends is
	// compressed on its own, so the server keeps no window between them.
	ClientNoContextTakeover bool
	// ServerWindowBits bounds the distance of the server's back-references
	// (8 to 15).
	ServerWindowBits int
	// ClientWindowBits bounds the client's (8 to 15): the window the
	// server keeps with client context takeover.
	ClientWindowBits int

	offeredServerBits, offeredClientBits bool // echoed in the response
}

// errOffer declines one extension offer.
var errOffer = errors.New("offer declined")

// NegotiateDeflate reads the Sec-WebSocket-Extensions values of a request
// and accepts the first permessage-deflate offer the server can honour;
// offers it cannot (unknown or repeated parameters, bad values) are
// declined, not failed. contextTakeover says whether the server keeps
// windows between messages (more memory, better ratio); without it the
// response asks the client for client_no_context_takeover too. It returns
// the response's extension value ("" when nothing was accepted).
func NegotiateDeflate(values []string, contextTakeover bool) (response string, d Deflate, ok bool) {
	for _, v := range values {
		offers, wellFormed := parseOffers(v)
		if !wellFormed {
			continue // a malformed header value declines all it holds
		}
		for _, o := range offers {
			if o.name != "permessage-deflate" {
				continue
			}
			if d, err := acceptOffer(o.params, contextTakeover); err == nil {
				return d.response(), d, true
			}
		}
	}
	return "", Deflate{}, false
}

type offer struct {
	name   string
	params []param
}

// parseOffers reads one Sec-WebSocket-Extensions value:
// name *( ";" param [ "=" value ] ), comma-separated.
func parseOffers(v string) ([]offer, bool) {
	var offers []offer
	ok := httphead.ScanOptions([]byte(v), func(i int, name, attr, val []byte) httphead.Control {
		for len(offers) <= i {
			offers = append(offers, offer{})
		}
		offers[i].name = strings.ToLower(string(name))
		if attr != nil {
			offers[i].params = append(offers[i].params, param{strings.ToLower(string(attr)), string(val), val != nil})
		}
		return httphead.ControlContinue
	})
	return offers, ok
}

type param struct {
	key, val string
	hasVal   bool
}

// acceptOffer checks one permessage-deflate offer and decides what the
// server answers.
func acceptOffer(offer []param, contextTakeover bool) (Deflate, error) {
	d := Deflate{ServerWindowBits: 15, ClientWindowBits: 15}
	seen := map[string]bool{}
	clientBits := 0 // the client_max_window_bits value offered, 0: none
	for _, p := range offer {
		if seen[p.key] {
			return Deflate{}, errOffer // RFC 7692 7: a repeated parameter declines the offer
		}
		seen[p.key] = true
		switch p.key {
		case "server_no_context_takeover":
			if p.hasVal {
				return Deflate{}, errOffer
			}
			d.ServerNoContextTakeover = true
		case "client_no_context_takeover":
			if p.hasVal {
				return Deflate{}, errOffer
			}
			d.ClientNoContextTakeover = true
		case "server_max_window_bits":
			bits, ok := windowBits(p)
			if !ok || !p.hasVal {
				return Deflate{}, errOffer
			}
			d.ServerWindowBits = bits
		case "client_max_window_bits":
			if p.hasVal {
				bits, ok := windowBits(p)
				if !ok {
					return Deflate{}, errOffer
				}
				clientBits = bits
			}
		default:
			return Deflate{}, errOffer
		}
	}
	if !contextTakeover {
		d.ServerNoContextTakeover, d.ClientNoContextTakeover = true, true
	}
	if d.ServerWindowBits < 15 {
		// A small window is honoured with the pooled windowed compressors,
		// which keep nothing between messages.
		d.ServerNoContextTakeover = true
	}
	if clientBits > 0 {
		d.ClientWindowBits = clientBits
	}
	d.offeredServerBits = seen["server_max_window_bits"]
	d.offeredClientBits = clientBits > 0
	return d, nil
}

// windowBits reads a window size parameter: a decimal 8 to 15 without a
// leading zero.
func windowBits(p param) (int, bool) {
	if !p.hasVal {
		return 0, true
	}
	if len(p.val) == 0 || len(p.val) > 2 || p.val[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(p.val)
	return n, err == nil && n >= 8 && n <= 15
}

// response is the extension value that accepts d, echoing what RFC 7692
// asks: server_no_context_takeover when the client asked for it or the
// server adds it, client_no_context_takeover when the server asks for it,
// server_max_window_bits as offered, client_max_window_bits as offered
// with a value.
func (d Deflate) response() string {
	var b strings.Builder
	b.WriteString("permessage-deflate")
	if d.ServerNoContextTakeover {
		b.WriteString("; server_no_context_takeover")
	}
	if d.ClientNoContextTakeover {
		b.WriteString("; client_no_context_takeover")
	}
	if d.offeredServerBits {
		b.WriteString("; server_max_window_bits=" + strconv.Itoa(d.ServerWindowBits))
	}
	if d.offeredClientBits {
		b.WriteString("; client_max_window_bits=" + strconv.Itoa(d.ClientWindowBits))
	}
	return b.String()
}

// deflateTail completes a message's compressed payload: the sync marker
// the sender stripped, then an empty final block so that the reader ends
// cleanly.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflater is a pooled decompressor with a buffered reader in front of
// its input: flate reads a *bufio.Reader by its fast path, a plain
// io.ByteReader one interface call per byte.
type inflater struct {
	fr  io.ReadCloser
	br  *bufio.Reader
	src tailReader
}

var inflaters = sync.Pool{New: func() any {
	return &inflater{fr: flate.NewReader(nil), br: bufio.NewReaderSize(nil, 4<<10)}
}}

// tailReader reads p, then deflateTail, without allocating.
type tailReader struct {
	p    []byte
	tail int
}

func (r *tailReader) Read(b []byte) (int, error) {
	if len(r.p) > 0 {
		n := copy(b, r.p)
		r.p = r.p[n:]
		return n, nil
	}
	if r.tail == len(deflateTail) {
		return 0, io.EOF
	}
	n := copy(b, deflateTail[r.tail:])
	r.tail += n
	return n, nil
}

// ReadByte lets flate read without its own buffer.
func (r *tailReader) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := r.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// Inflate decompresses one message's payload, appending to dst, with dict
// as the window the message may refer to (nil without context takeover).
// It stops with 1009 as soon as the output passes limit (limit <= 0: no
// limit), so a small payload that would inflate further costs no more than
// limit; with text, the output is checked as UTF-8 as it comes (1007 at the
// first bad byte). Data that is not valid deflate fails with 1007.
func Inflate(dst, payload, dict []byte, limit int64, text bool) ([]byte, error) {
	in := inflaters.Get().(*inflater)
	defer func() {
		in.src = tailReader{}
		in.br.Reset(nil)
		inflaters.Put(in)
	}()
	in.src = tailReader{p: payload}
	in.br.Reset(&in.src)
	r := in.fr
	if err := r.(flate.Resetter).Reset(in.br, dict); err != nil {
		return dst, &api.CloseError{Code: api.StatusInvalidFramePayloadData, Reason: "invalid compressed data"}
	}
	var v utf8Validator
	start := len(dst)
	for {
		if limit > 0 && int64(len(dst)-start) == limit {
			// Full: one more byte of output is too many, and finding
			// out costs a byte, not a larger buffer.
			var one [1]byte
			n, err := io.ReadFull(r, one[:])
			if n > 0 {
				return dst, &api.CloseError{Code: api.StatusMessageTooBig,
					Reason: "message inflates past the read limit of " + strconv.FormatInt(limit, 10) + " bytes"}
			}
			if err != io.EOF {
				return dst, &api.CloseError{Code: api.StatusInvalidFramePayloadData, Reason: "invalid compressed data: " + err.Error()}
			}
			break
		}
		if len(dst) == cap(dst) {
			grow := max(cap(dst)-start, 4*len(payload), 512)
			if limit > 0 {
				grow = int(min(int64(grow), limit-int64(len(dst)-start)))
			}
			dst = append(dst, make([]byte, grow)...)[:len(dst)]
		}
		end := cap(dst)
		if limit > 0 {
			end = min(end, start+int(limit))
		}
		n, err := r.Read(dst[len(dst):end])
		chunk := dst[len(dst) : len(dst)+n]
		dst = dst[:len(dst)+n]
		if text && !v.write(chunk) {
			return dst, &api.CloseError{Code: api.StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in text message"}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, &api.CloseError{Code: api.StatusInvalidFramePayloadData, Reason: "invalid compressed data: " + err.Error()}
		}
	}
	if text && !v.complete() {
		return dst, &api.CloseError{Code: api.StatusInvalidFramePayloadData, Reason: "text message ends inside a UTF-8 sequence"}
	}
	return dst, nil
}

// writers pools compressors by level and window: a compressor is large
// (about 1 MiB), so connections borrow one for a message and keep none.
var writers sync.Map // writerKey -> *sync.Pool

type writerKey struct{ level, bits int }

// appendWriter appends what it is given to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Compress appends p compressed as one permessage-deflate message, without
// the trailing sync marker: with a non-nil dict (the end of what was sent
// before, context takeover; empty for the first message) by the stateless
// encoder, which keeps no state; with a nil one
// by a pooled compressor at level, limited to a window of 2^bits bytes.
func Compress(dst, p []byte, level, bits int, dict []byte) []byte {
	w := &appendWriter{b: dst}
	if dict != nil {
		flate.StatelessDeflate(w, p, false, dict)
	} else {
		key := writerKey{level, bits}
		pool, _ := writers.LoadOrStore(key, &sync.Pool{})
		fw, _ := pool.(*sync.Pool).Get().(*flate.Writer)
		if fw == nil {
			if bits < 15 {
				fw, _ = flate.NewWriterWindow(w, 1<<bits)
			} else {
				fw, _ = flate.NewWriter(w, level)
			}
		} else {
			fw.Reset(w)
		}
		fw.Write(p)
		fw.Flush()
		fw.Reset(nil) // keep no reference to the output
		pool.(*sync.Pool).Put(fw)
	}
	// Both end with a sync marker (an empty stored block): RFC 7692 7.2.1
	// drops its last four bytes.
	return w.b[:len(w.b)-4]
}

// MaxStatelessWindow is the most of what was sent before that the
// stateless encoder refers to with context takeover.
const MaxStatelessWindow = 8 << 10
