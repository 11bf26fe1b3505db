package conn

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
)

// Response is an http.ResponseWriter that buffers what middleware or the
// router answer instead of an upgrade (401, 403, 404, 426, ...), for
// runtimes that write that answer themselves. The body is bounded.
type Response struct {
	header http.Header
	status int
	body   []byte
}

// maxResponseBody bounds the body a Response keeps.
const maxResponseBody = 64 << 10

// NewResponse returns an empty Response.
func NewResponse() *Response { return &Response{} }

// Header returns the response headers. The map is made on first use: an
// upgrade that succeeds usually writes none, and what a handshake leaves
// behind shares size classes with what connections keep.
func (w *Response) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

// WriteHeader records the status, once.
func (w *Response) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// Write appends to the body, up to its bound.
func (w *Response) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	n := min(len(p), maxResponseBody-len(w.body))
	w.body = append(w.body, p[:n]...)
	return len(p), nil
}

// Status is the status written, 200 if none was.
func (w *Response) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Body is the body written.
func (w *Response) Body() []byte { return w.body }

// AppendHTTP appends the response as HTTP/1.1 that closes the connection.
func (w *Response) AppendHTTP(b []byte) []byte {
	b = fmt.Appendf(b, "HTTP/1.1 %d %s\r\n", w.Status(), http.StatusText(w.Status()))
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Set("Connection", "close")
	var hb bytes.Buffer
	h.Write(&hb)
	b = append(b, hb.Bytes()...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, w.body...)
}
