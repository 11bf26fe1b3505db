package gnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/conn"
)

// readRequest parses the upgrade request from gnet's buffer, bounded by
// MaxHeaderBytes; a partial request stays buffered for the next call.
func (s *Server) readRequest(gc gnetv2.Conn, sess *session) gnetv2.Action {
	buf, _ := gc.Peek(-1)
	r, n, err := conn.ReadRequest(buf, s.opts.MaxHeaderBytes)
	if err != nil {
		var he *conn.HandshakeError
		errors.As(err, &he)
		return s.refuse(gc, sess, he.Status, he.Header, he.Msg)
	}
	if r == nil {
		return gnetv2.None
	}
	gc.Discard(n) // n > 0: a request head
	s.clearDeadline(sess)
	r.RemoteAddr = sess.remote.String()
	if r.URL.Path == "/healthz" && !isUpgrade(r) {
		return s.refuse(gc, sess, http.StatusOK, nil, "ok")
	}
	sess.state.Store(stServing)
	go s.serve(sess, r)
	return gnetv2.None
}

// refuse answers a request that is not upgraded and closes the connection
// once the peer has read it.
func (s *Server) refuse(gc gnetv2.Conn, sess *session, status int, h http.Header, msg string) gnetv2.Action {
	w := newResponse()
	for k, v := range h {
		w.header[k] = v
	}
	if status == http.StatusOK {
		w.header.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte(msg + "\n"))
	} else {
		http.Error(w, msg, status)
	}
	gc.Write(w.bytes())
	return s.linger(gc, sess)
}

// linger half-closes a refused connection and reads it until the peer
// closes or lingerTime passes, so that the answer is not lost to a reset.
func (s *Server) linger(gc gnetv2.Conn, sess *session) gnetv2.Action {
	sess.state.Store(stLinger)
	if gc.OutboundBuffered() > 0 {
		return gnetv2.Close // gnet flushes what it can before closing
	}
	gc.Discard(-1)
	unix.Shutdown(gc.Fd(), unix.SHUT_WR)
	s.setDeadline(sess, time.Now().Add(lingerTime))
	return gnetv2.None
}

// serve runs the router (middleware, then the upgrade) for a parsed
// request, and the handler after an upgrade.
func (s *Server) serve(sess *session, r *http.Request) {
	w := newResponse()
	u := &upgrader{s: s, sess: sess}
	s.ws.Serve(s.router, w, r.WithContext(api.WithUpgrader(r.Context(), u)))
	if u.upgraded {
		return
	}
	sess.Write(w.bytes())
	sess.Close()
}

type upgrader struct {
	s        *Server
	sess     *session
	upgraded bool
}

// Upgrade checks the handshake, answers 101 and runs h.
func (u *upgrader) Upgrade(w http.ResponseWriter, r *http.Request, h api.Handler) {
	s, sess := u.s, u.sess
	c := s.ws.Upgrade(w, r, func() (conn.Transport, netip.AddrPort, error) {
		u.upgraded = true
		return sess, sess.remote, nil
	})
	if c == nil {
		return
	}
	sess.c.Store(c)
	if sess.state.CompareAndSwap(stServing, stOpen) {
		sess.gc.Wake(nil) // frames that came right behind the request
	} else {
		c.Gone(net.ErrClosed) // the socket closed during the upgrade
	}
	// A fresh goroutine, with a small stack, rather than this one, whose
	// stack grew through parsing and middleware: a blocking handler keeps
	// its goroutine for the life of the connection.
	go c.Run(h)
}

// response buffers what middleware or the router answer instead of an
// upgrade, to be written as one HTTP/1.1 response that closes the
// connection.
type response struct {
	header http.Header
	status int
	body   []byte
}

const maxBody = 64 << 10

func newResponse() *response { return &response{header: http.Header{}} }

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *response) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	n := min(len(p), maxBody-len(w.body))
	w.body = append(w.body, p[:n]...)
	return len(p), nil
}

func (w *response) bytes() []byte {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n", w.status, http.StatusText(w.status))
	w.header.Del("Content-Length")
	w.header.Del("Transfer-Encoding")
	w.header.Set("Connection", "close")
	var hb bytes.Buffer
	w.header.Write(&hb)
	b = append(b, hb.Bytes()...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, w.body...)
}

// isUpgrade reports whether r asks for a WebSocket.
func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		if conn.HasToken(v, "websocket") {
			return true
		}
	}
	return false
}
