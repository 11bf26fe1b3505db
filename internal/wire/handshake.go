package wire

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// HandshakeError is a refused upgrade: the HTTP status, the extra response
// headers RFC 6455 asks for, and the message for the body.
type HandshakeError struct {
	Status int
	Header http.Header
	Msg    string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("wsmatrix: handshake: %d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

// WriteResponse writes the error as an HTTP response through w.
func (e *HandshakeError) WriteResponse(w http.ResponseWriter) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	http.Error(w, e.Msg, e.Status)
}

func refuse(status int, msg string, kv ...string) *HandshakeError {
	e := &HandshakeError{Status: status, Msg: msg}
	if len(kv) > 0 {
		e.Header = http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Header.Set(kv[i], kv[i+1])
		}
	}
	return e
}

// ReadRequest parses the HTTP request at the start of b, for runtimes that
// read the upgrade request from raw bytes. It returns (nil, 0, nil) while
// the request line and headers are not yet all in b, and a *HandshakeError
// (431) once more than max bytes came without their end. n is the length of
// the request head: the bytes after it belong to the WebSocket stream.
// A request that announces a body is refused: an upgrade has none.
func ReadRequest(b []byte, max int) (r *http.Request, n int, err error) {
	end := headEnd(b)
	if end < 0 {
		if len(b) >= max {
			return nil, 0, refuse(http.StatusRequestHeaderFieldsTooLarge, "request header larger than the limit")
		}
		return nil, 0, nil
	}
	if end > max {
		return nil, 0, refuse(http.StatusRequestHeaderFieldsTooLarge, "request header larger than the limit")
	}
	hr := headReaders.Get().(*headReader)
	hr.b.Reset(b[:end])
	hr.r.Reset(&hr.b)
	r, err = http.ReadRequest(&hr.r) // what it keeps it copies: the reader goes back to the pool
	hr.b.Reset(nil)
	headReaders.Put(hr)
	if err != nil {
		return nil, 0, refuse(http.StatusBadRequest, "malformed request: "+err.Error())
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return nil, 0, refuse(http.StatusBadRequest, "request has a body")
	}
	if err := checkHead(r); err != nil {
		return nil, 0, err
	}
	return r, end, nil
}

// checkHead refuses what net/http's server refuses of a head that
// http.ReadRequest parses: another HTTP major version (505), a malformed
// Host, and header names or values that are not
// tokens or text (a space before the colon makes the name "Content-Length "
// to one reader and a length to another).
func checkHead(r *http.Request) error {
	if r.ProtoMajor != 1 {
		return refuse(http.StatusHTTPVersionNotSupported, "unsupported protocol version")
	}
	// http.ReadRequest moved Host into r.Host (and refused two).
	if !httpguts.ValidHostHeader(r.Host) {
		return refuse(http.StatusBadRequest, "malformed Host header")
	}
	for k, vs := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return refuse(http.StatusBadRequest, "invalid header name")
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return refuse(http.StatusBadRequest, "invalid header value")
			}
		}
	}
	return nil
}

// headReader reads a request head out of the bytes an event loop holds. Its
// buffer holds a whole usual head, so net/textproto reads each line in
// place rather than gathering it piece by piece.
type headReader struct {
	b bytes.Reader
	r bufio.Reader
}

var headReaders = sync.Pool{New: func() any {
	hr := &headReader{}
	hr.r = *bufio.NewReaderSize(&hr.b, 4096)
	return hr
}}

// headEnd returns the index just past the blank line that ends the request
// head (CRLF CRLF, or bare LF as net/http accepts), or -1.
func headEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1 // just past the '\n'
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
	return -1
}

// CheckRequest checks r as a WebSocket upgrade request (RFC 6455 section
// 4.2.1) and returns its Sec-WebSocket-Key. A refusal is a
// *HandshakeError: 405 for a method other than GET, 400 for HTTP/1.0, a
// missing Host or a bad key, 426 for a request that is not an upgrade or
// asks another version. Policy (origin, subprotocols) is the caller's.
func CheckRequest(r *http.Request) (key string, err error) {
	if r.Method != http.MethodGet {
		return "", refuse(http.StatusMethodNotAllowed, "a WebSocket upgrade must use GET", "Allow", "GET")
	}
	if r.ProtoMajor > 1 { // HTTP/2 and later do not upgrade (an HTTP/1 request line that says so is bogus)
		return "", refuse(http.StatusHTTPVersionNotSupported, "unsupported protocol version")
	}
	if !r.ProtoAtLeast(1, 1) {
		return "", refuse(http.StatusBadRequest, "a WebSocket upgrade needs HTTP/1.1")
	}
	if r.Host == "" {
		return "", refuse(http.StatusBadRequest, "missing Host header")
	}
	if !HeaderHasToken(r.Header, "Upgrade", "websocket") || !HeaderHasToken(r.Header, "Connection", "upgrade") {
		return "", refuse(http.StatusUpgradeRequired, "this is a WebSocket endpoint: send an upgrade request",
			"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version", "13")
	}
	// Header names are spelled canonically ("Websocket"): Values would
	// otherwise allocate the canonical form at every handshake.
	if v := r.Header.Values("Sec-Websocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return "", refuse(http.StatusUpgradeRequired, "unsupported WebSocket version: only 13 is spoken",
			"Sec-WebSocket-Version", "13")
	}
	keys := r.Header.Values("Sec-Websocket-Key")
	if len(keys) != 1 || !validKey(strings.TrimSpace(keys[0])) {
		return "", refuse(http.StatusBadRequest, "missing or malformed Sec-WebSocket-Key")
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// What would follow the head is a body to one reader and frames
		// to another: refused, as ReadRequest refuses it.
		return "", refuse(http.StatusBadRequest, "a WebSocket upgrade request has no body")
	}
	return strings.TrimSpace(keys[0]), nil
}

func validKey(k string) bool {
	if len(k) != 24 {
		return false
	}
	var dst [18]byte
	n, err := base64.StdEncoding.Decode(dst[:], []byte(k))
	return err == nil && n == 16
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func AcceptKey(key string) string { return string(appendAcceptKey(nil, key)) }

// appendAcceptKey appends AcceptKey(key) to dst, allocating nothing else:
// the handshake's garbage shares size classes with what connections keep,
// and leaves holes among them.
func appendAcceptKey(dst []byte, key string) []byte {
	var buf [64]byte // key (24 bytes when valid) and the GUID fit
	sum := sha1.Sum(append(append(buf[:0], key...), acceptGUID...))
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// AppendResponse appends the 101 Switching Protocols response for the
// client's key, naming subprotocol and extensions unless they are "".
func AppendResponse(dst []byte, key, subprotocol, extensions string) []byte {
	dst = slices.Grow(dst, 136+len(subprotocol)+26+len(extensions)+28) // one allocation at most
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = appendAcceptKey(dst, key)
	if subprotocol != "" {
		dst = append(dst, "\r\nSec-WebSocket-Protocol: "...)
		dst = append(dst, subprotocol...)
	}
	if extensions != "" {
		dst = append(dst, "\r\nSec-WebSocket-Extensions: "...)
		dst = append(dst, extensions...)
	}
	return append(dst, "\r\n\r\n"...)
}

// HeaderHasToken reports whether a comma-separated header of h holds token,
// without regard to case ("Connection: keep-alive, Upgrade").
func HeaderHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		if HasToken(v, token) {
			return true
		}
	}
	return false
}

// HasToken reports whether the comma-separated header value v holds token,
// without regard to case.
func HasToken(v, token string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
