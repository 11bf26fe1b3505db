package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"golang.org/x/sys/unix"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// KeepAliveIdle is how long a plain HTTP connection may wait for its next
// request.
const KeepAliveIdle = 60 * time.Second

// HTTPServer returns the net/http server of the runtimes that serve HTTP
// with net/http (stdhttp, and gnet until an upgrade): the request head is
// bounded in size (MaxHeaderBytes, 431) and time (HandshakeTimeout), an
// idle keep-alive connection is closed after KeepAliveIdle. Its requests'
// contexts are marked, so that an upgraded connection keeps only their
// values (detach).
func HTTPServer(o *api.Options, h http.Handler) *http.Server {
	hs := &http.Server{
		Handler:        h,
		BaseContext:    func(net.Listener) context.Context { return servedBase },
		MaxHeaderBytes: o.MaxHeaderBytes,
		IdleTimeout:    KeepAliveIdle,
		ErrorLog:       slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	if o.HandshakeTimeout > 0 {
		hs.ReadHeaderTimeout = o.HandshakeTimeout
	}
	return hs
}

// Listener wraps l so that every write on an accepted connection gives up
// after WriteTimeout without progress: a client that stops reading a
// response cannot hold its goroutine forever, while a long response to a
// client that reads goes on. Unwrap gives the connection back. An accept
// that fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
// ENOMEM) is retried after a pause (5 ms, doubling up to 1 s) and logged at
// most once a second: a server at its file limit keeps serving what it
// holds and accepts again once connections close, where a server that
// returned the error would stop.
func Listener(l net.Listener, o *api.Options) net.Listener {
	return &listener{Listener: l, timeout: o.WriteTimeout, log: o.Logger}
}

type listener struct {
	net.Listener
	timeout time.Duration
	log     *slog.Logger
	limit   LogLimit // exhaustions logged once a second
}

func (l *listener) Accept() (net.Conn, error) {
	pause := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !exhausted(err) {
				return nil, err
			}
			if ok, held := l.limit.Allow(); ok {
				l.log.Warn("wsmatrix: accept: out of descriptors or memory; existing connections go on, new ones wait",
					"err", err, "retry_in", pause, "not_logged", held)
			}
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
			continue
		}
		if l.timeout <= 0 {
			return c, nil
		}
		return &writeDeadlineConn{Conn: c, timeout: l.timeout}, nil
	}
}

// exhausted reports an accept error that passes once resources are freed.
func exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

// Unwrap returns the connection Listener wrapped, or c.
func Unwrap(c net.Conn) net.Conn {
	if w, ok := c.(*writeDeadlineConn); ok {
		return w.Conn
	}
	return c
}

func (c *writeDeadlineConn) Unwrap() net.Conn { return c.Conn }

// ListenHTTP listens on addr for a runtime that serves HTTP with
// net/http: connections whose writes stall are cut (Listener), TLS is
// served when the options hold a TLSConfig, and the server is HTTPServer's.
// serve runs it until Shutdown, and reports http.ErrServerClosed as nil.
func ListenHTTP(addr string, o *api.Options, h http.Handler) (l net.Listener, hs *http.Server, serve func() error, err error) {
	l, err = Listen(addr, o)
	if err != nil {
		return nil, nil, nil, err
	}
	hs, serve = ServeHTTP(l, o, h)
	return l, hs, serve, nil
}

// ServeHTTP is ListenHTTP on a listener of the runtime's own.
func ServeHTTP(l net.Listener, o *api.Options, h http.Handler) (hs *http.Server, serve func() error) {
	served := Listener(l, o)
	if o.TLSConfig != nil {
		served = tls.NewListener(served, o.TLSConfig)
	}
	hs = HTTPServer(o, h)
	serve = func() error {
		if err := hs.Serve(served); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return hs, serve
}

// Listen listens on the TCP address addr, with SO_REUSEPORT when
// o.ReusePort says so.
func Listen(addr string, o *api.Options) (net.Listener, error) {
	var lc net.ListenConfig
	if o.ReusePort {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Reserve holds the TCP address addr for sockets that share it with
// SO_REUSEPORT, port 0 included (it becomes one port), without listening:
// a listening socket in the group would be given connections that nobody
// accepts, and closing it would reset them. It returns the address bound
// and the function that lets it go.
func Reserve(addr string) (net.Addr, func() error, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	family, ip4 := unix.AF_INET6, ta.IP.To4()
	if ip4 != nil {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &net.OpError{Op: "listen", Net: "tcp", Addr: ta, Err: err}
	}
	fail := func(err error) (net.Addr, func() error, error) {
		unix.Close(fd)
		return nil, nil, &net.OpError{Op: "listen", Net: "tcp", Addr: ta, Err: err}
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			return fail(err)
		}
	}
	var sa unix.Sockaddr
	if ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		if ta.IP == nil { // every address, both families, as net.Listen binds ":port"
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				return fail(err)
			}
		}
		sa6 := &unix.SockaddrInet6{Port: ta.Port}
		copy(sa6.Addr[:], ta.IP.To16())
		sa = sa6
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	port := ta.Port
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		port = b.Port
	case *unix.SockaddrInet6:
		port = b.Port
	}
	ip := ta.IP
	if ip == nil {
		ip = net.IPv6unspecified // as net.Listen's address reads: [::]:port
	}
	return &net.TCPAddr{IP: ip, Port: port, Zone: ta.Zone}, func() error { return unix.Close(fd) }, nil
}
