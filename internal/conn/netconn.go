package conn

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// Admission checks an upgrade request and reserves room for its
// connection, or writes the refusal through w: the handshake error of
// wire.CheckRequest, or 503 when the server is full or shutting down. On
// success the caller completes the upgrade and calls NewConn, or Release.
func (s *Server) Admission(w http.ResponseWriter, r *http.Request) (wire.Accept, bool) {
	acc, err := wire.CheckRequest(r, &s.opts)
	if err != nil {
		var he *wire.HandshakeError
		errors.As(err, &he)
		he.WriteResponse(w)
		s.observe(func(o api.Observer) { o.Handshake(he.Status) })
		return acc, false
	}
	if !s.admit() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "wsmatrix: too many connections", http.StatusServiceUnavailable)
		s.observe(func(o api.Observer) { o.Handshake(http.StatusServiceUnavailable) })
		return acc, false
	}
	return acc, true
}

// NetTransport is the Transport of a blocking net.Conn: each write gets
// the write timeout as its deadline.
func NetTransport(c net.Conn, writeTimeout time.Duration) Transport {
	return &netTransport{c: c, timeout: writeTimeout}
}

type netTransport struct {
	c       net.Conn
	timeout time.Duration
}

func (t *netTransport) Write(b []byte) error {
	if t.timeout > 0 {
		t.c.SetWriteDeadline(time.Now().Add(t.timeout))
	}
	_, err := t.c.Write(b)
	return err
}

func (t *netTransport) Close() error { return t.c.Close() }

func (t *netTransport) CloseWrite() error {
	if cw, ok := t.c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// AddrPort returns a's address and port.
func AddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
