package wire

import (
	"encoding/binary"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// Kind says what an Event carries.
type Kind uint8

const (
	// None: no event; the input holds no more complete piece.
	None Kind = iota
	// Data: a piece of a text or binary message, unmasked and, for text,
	// checked as UTF-8 so far.
	Data
	// Ping: a whole ping frame; answer it with AppendPong.
	Ping
	// Pong: a whole pong frame.
	Pong
	// Close: a valid close frame; Code and Reason are set. The parser
	// ignores everything after it.
	Close
)

// Event is one thing the parser found in its input. (Its fields are laid
// out so that it takes 64 bytes: it sits in the frame of every parse.)
type Event struct {
	// Payload aliases the parser's input and was unmasked in place. It is
	// valid until that input is reused.
	Payload []byte
	// FrameLen is the declared payload length of the frame this Data
	// piece belongs to (a hint for sizing a message buffer).
	FrameLen int64
	// FrameRest is how much of that frame's payload is still to come
	// after this piece.
	FrameRest int64
	// Code and Reason are the close frame's; Code is 1005 when the frame
	// carried none.
	Reason string
	Code   api.StatusCode
	Kind   Kind
	// Type is the type of the message a Data piece belongs to.
	Type api.MessageType
	// First is true for the first piece of a message; Fin for the last.
	First, Fin bool
	// Compressed is true for the pieces of a message sent compressed
	// (RSV1 on its first frame, permessage-deflate): the payload is to be
	// inflated once the message is whole, and its UTF-8 is checked then.
	Compressed bool
}

// Parser reads the frames a client sends to a server. It requires masking,
// reassembles the state of fragmented messages, enforces the read limit
// from frame headers before any payload is taken, and checks text as UTF-8
// as it arrives. Its zero value is not ready: use NewParser.
//
// A Parser never buffers: it returns data pieces that alias its input, so
// a frame whose payload is all in the input costs no copy, and a frame that
// is not yet whole is returned piece by piece. Control frames (at most 131
// bytes with their header) are returned only whole.
type Parser struct {
	limit int64

	remaining int64 // payload bytes of the current data frame still to come
	offset    int64 // bytes of the current data frame already unmasked (with remaining, its length)
	msgLen    int64
	err       *api.CloseError // the first error, returned again forever

	// (Small fields last, sharing words: every connection holds a parser.)
	inFrame    bool // a data frame header was read; its payload is pending
	fin        bool
	mask       [4]byte
	fragmented bool // a message was started and awaits continuation frames
	first      bool // the next Data piece is the first of its message
	msgType    api.MessageType
	text       utf8Validator
	deflate    bool // permessage-deflate was negotiated: RSV1 marks a compressed message
	compressed bool // the message being read is compressed
	closed     bool // a close frame was received
}

// NewParser returns a parser that fails messages longer than limit bytes
// with 1009; limit <= 0 means no limit. With deflate (permessage-deflate
// negotiated), RSV1 on the first frame of a data message marks it
// compressed; without it, RSV1 is a protocol error. The limit then bounds
// the compressed payload, with room for deflate's stored blocks
// (deflateSlack); Inflate bounds what it inflates to.
func NewParser(limit int64, deflate bool) *Parser { return &Parser{limit: limit, deflate: deflate} }

// MaxHeaderLen is the longest frame header: 2 bytes, 8 of length, 4 of mask.
const MaxHeaderLen = ws.MaxHeaderSize

// MinBuffer is the smallest input buffer with which Parse always makes
// progress: a whole control frame with its header.
const MinBuffer = MaxHeaderLen + ws.MaxControlFramePayloadSize

// Parse reads the next event found at the start of b into ev and returns
// how many bytes of b it consumed. With Kind None, the caller keeps b[n:]
// and calls again when more bytes arrive. An error is a *api.CloseError
// whose Code (1002, 1007 or 1009) is to be sent in the close frame; the
// parser stays failed.
//
// The event is written to the caller's ev rather than returned, and frame
// starts are parsed out of line: a blocking handler parses in its own
// goroutine, deep in its stack, and this frame is on the path of every
// message it receives.
func (p *Parser) Parse(b []byte, ev *Event) (n int, err error) {
	ev.Kind = None
	if p.err != nil {
		return 0, p.err
	}
	if p.closed {
		return len(b), nil
	}
	if !p.inFrame {
		if n, err = p.start(b, ev); err != nil || !p.inFrame {
			return n, err // a control frame whole, or not a whole header yet
		}
		b = b[n:]
	}
	k := min(p.remaining, int64(len(b)))
	if k == 0 && p.remaining > 0 {
		return n, nil // only the header so far
	}
	payload := b[:k]
	ws.Cipher(payload, p.mask, int(p.offset)) // only offset mod 4 counts
	p.offset += k
	p.remaining -= k
	checkText := p.msgType == api.Text && !p.compressed
	if checkText && !p.text.write(payload) {
		return 0, p.fail(api.StatusInvalidFramePayloadData, "invalid UTF-8 in text message")
	}
	// Field by field: a composite literal is built in this frame first.
	ev.Kind, ev.Type, ev.Payload, ev.First, ev.Compressed = Data, p.msgType, payload, p.first, p.compressed
	ev.FrameLen, ev.FrameRest = p.offset+p.remaining, p.remaining
	ev.Fin, ev.Code, ev.Reason = false, 0, ""
	p.first = false
	if p.remaining == 0 {
		p.inFrame = false
		ev.Fin = p.fin
		if ev.Fin && checkText && !p.text.complete() {
			return 0, p.fail(api.StatusInvalidFramePayloadData, "text message ends inside a UTF-8 sequence")
		}
	}
	return n + int(k), nil
}

// start reads the frame header at the start of b. A control frame is
// read whole into ev; a data frame's header starts the frame (inFrame),
// its payload follows. It returns the bytes consumed: none until the
// header, or a control frame, is whole.
//
//go:noinline
func (p *Parser) start(b []byte, ev *Event) (int, error) {
	h, hlen, ok, err := p.header(b)
	if err != nil || !ok {
		return 0, err
	}
	if h.OpCode.IsControl() {
		end := hlen + int(h.Length)
		if len(b) < end {
			return 0, nil
		}
		payload := b[hlen:end]
		ws.Cipher(payload, h.Mask, 0)
		return end, p.control(h.OpCode, payload, ev)
	}
	if h.OpCode != ws.OpContinuation {
		p.msgType = api.MessageType(h.OpCode)
		p.msgLen = 0
		p.text.reset()
		p.first = true
		p.compressed = h.Rsv&4 != 0
	}
	p.msgLen += h.Length
	if p.limit > 0 && p.msgLen > p.limit+p.deflateSlack() { // no overflow: DeflateSlack stops at MaxInt64
		return 0, p.tooBig()
	}
	p.fragmented = !h.Fin
	p.inFrame, p.fin, p.mask = true, h.Fin, h.Mask
	p.remaining, p.offset = h.Length, 0
	return hlen, nil
}

// Done reports whether the parser takes nothing more: a close frame was
// parsed, or it failed. What follows is discarded.
func (p *Parser) Done() bool { return p.closed || p.err != nil }

// deflateSlack is what a compressed message may take beyond the limit on
// the wire: a message that does not compress goes out in stored blocks,
// 5 bytes each (of up to 64 KiB) more than its length, and the limit
// bounds what it inflates to (Inflate). 1/1024 of the limit and 64 bytes
// cover blocks of 1 KiB and more.
func (p *Parser) deflateSlack() int64 {
	if !p.compressed {
		return 0
	}
	return DeflateSlack(p.limit)
}

// DeflateSlack is what a compressed message of up to limit bytes may take
// beyond limit on the wire (limit + DeflateSlack(limit) never overflows).
// Whoever bounds what waits for a handler allows it too.
func DeflateSlack(limit int64) int64 {
	s := limit>>10 + 64
	if limit > math.MaxInt64-s {
		return math.MaxInt64 - limit
	}
	return s
}

// tooBig fails a message longer than the limit with 1009.
//
//go:noinline
func (p *Parser) tooBig() error {
	return p.fail(api.StatusMessageTooBig, "message exceeds the read limit of "+strconv.FormatInt(p.limit, 10)+" bytes")
}

// header decodes and checks the frame header at the start of b.
func (p *Parser) header(b []byte) (h ws.Header, n int, ok bool, err error) {
	if len(b) < 2 {
		return h, 0, false, nil
	}
	n = 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if n == 10 && len(b) >= 10 && b[2]&0x80 != 0 {
		return h, 0, false, p.fail(api.StatusProtocolError, "frame length has its most significant bit set")
	}
	masked := b[1]&0x80 != 0
	if masked {
		n += 4
	}
	if len(b) < n {
		return h, 0, false, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = masked
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		h.Length = int64(binary.BigEndian.Uint64(b[2:10])) // top bit checked above
	default:
		h.Length = int64(l)
	}
	if masked {
		copy(h.Mask[:], b[n-4:n])
	}
	state := ws.StateServerSide
	if p.fragmented {
		state = state.Set(ws.StateFragmented)
	}
	if h.Rsv != 0 {
		// RSV1 is permessage-deflate's, on the first frame of a data
		// message only; RSV2 and RSV3 belong to no extension here.
		if !p.deflate || h.Rsv != 4 || h.OpCode.IsControl() || h.OpCode == ws.OpContinuation {
			return h, 0, false, p.fail(api.StatusProtocolError, "non-zero rsv bits not allowed here")
		}
		state = state.Set(ws.StateExtended) // RSV checked above
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return h, 0, false, p.fail(api.StatusProtocolError, err.Error())
	}
	return h, n, true, nil
}

// control reads a whole, unmasked control frame into ev.
func (p *Parser) control(op ws.OpCode, payload []byte, ev *Event) error {
	switch op {
	case ws.OpPing:
		*ev = Event{Kind: Ping, Payload: payload}
		return nil
	case ws.OpPong:
		*ev = Event{Kind: Pong, Payload: payload}
		return nil
	}
	code, reason, err := ParseClose(payload)
	if err != nil {
		ce := err.(*api.CloseError)
		return p.fail(ce.Code, ce.Reason)
	}
	p.closed = true
	*ev = Event{Kind: Close, Code: code, Reason: reason}
	return nil
}

func (p *Parser) fail(code api.StatusCode, reason string) error {
	p.err = &api.CloseError{Code: code, Reason: reason}
	return p.err
}

// ParseClose decodes and checks a close frame's payload: an empty payload
// is code 1005; one byte, or a code that may not be sent, is a protocol
// error (1002); a reason that is not UTF-8 is 1007.
func ParseClose(payload []byte) (api.StatusCode, string, error) {
	switch {
	case len(payload) == 0:
		return api.StatusNoStatusReceived, "", nil
	case len(payload) == 1:
		return 0, "", &api.CloseError{Code: api.StatusProtocolError, Reason: "close frame payload of one byte"}
	}
	code := api.StatusCode(binary.BigEndian.Uint16(payload))
	if !code.Sendable() {
		return 0, "", &api.CloseError{Code: api.StatusProtocolError, Reason: "invalid close code " + code.String()}
	}
	if !utf8.Valid(payload[2:]) {
		return 0, "", &api.CloseError{Code: api.StatusInvalidFramePayloadData, Reason: "close reason is not UTF-8"}
	}
	return code, string(payload[2:]), nil
}
