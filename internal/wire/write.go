package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// Opcodes of the frames a server writes.
const (
	OpText   = ws.OpText
	OpBinary = ws.OpBinary
	OpClose  = ws.OpClose
	OpPing   = ws.OpPing
	OpPong   = ws.OpPong
)

// AppendHeader appends the header of an unmasked, final frame of n payload
// bytes (servers never mask, and wsmatrix sends every message in one frame).
func AppendHeader(dst []byte, op ws.OpCode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// AppendFrame appends a whole unmasked frame.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	return append(AppendHeader(dst, op, len(payload)), payload...)
}

// MaxCloseReason is the longest close reason that fits a control frame.
const MaxCloseReason = ws.MaxControlFramePayloadSize - 2

// CheckClose reports why code and reason cannot be sent in a close frame
// (a bad argument, not a closed connection).
func CheckClose(code api.StatusCode, reason string) error {
	switch {
	case !code.Sendable():
		return errors.New("close code " + code.String() + " may not be sent")
	case len(reason) > MaxCloseReason:
		return fmt.Errorf("the reason is %d bytes, more than a close frame's %d", len(reason), MaxCloseReason)
	case !utf8.ValidString(reason):
		return errors.New("the reason is not UTF-8")
	}
	return nil
}

// AppendClose appends a close frame. Code 1005 (no status) writes an empty
// close frame; a reason that does not fit is cut at a character boundary.
func AppendClose(dst []byte, code api.StatusCode, reason string) []byte {
	if code == api.StatusNoStatusReceived || code == 0 {
		return AppendHeader(dst, OpClose, 0)
	}
	if len(reason) > MaxCloseReason {
		cut := MaxCloseReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = AppendHeader(dst, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// HeaderLen is the length of the header AppendHeader writes for a payload
// of n bytes.
func HeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// AppendCompressedHeader appends the header of a final frame carrying a
// compressed message: RSV1 set (permessage-deflate).
func AppendCompressedHeader(dst []byte, op ws.OpCode, n int) []byte {
	start := len(dst)
	dst = AppendHeader(dst, op, n)
	dst[start] |= 0x40
	return dst
}
