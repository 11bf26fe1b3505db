package conn

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A runtime gives each connection a Transport: the one thing it must
// implement to serve wsmatrix handlers. Everything else (framing, the
// inbox, the send queue and its budget, keepalive, the close handshake)
// lives in this package. The contract, in full:
//
//   - Write and Close (Transport) always. Write is called by one goroutine
//     at a time, in the order the bytes must go out, and never while the
//     connection's locks are held.
//   - TryWrite (TryWriter) when the socket can be written without waiting.
//     The connection then writes each frame from the sender's goroutine
//     and only hands what the socket did not take to a goroutine of its
//     own, so that no Send ever waits on the socket.
//   - Backlog, RefreshBacklog and WaitBacklog (Backlogger) when TryWrite
//     hands the bytes to an event loop that holds them for the peer: they
//     count against the send queue's budget.
//   - Resume (Resumer) when the runtime feeds input itself (an event loop
//     calling Feed); blocking runtimes call Attach (or ReadLoop) instead.
//   - CloseWrite (optional) to send FIN after the close frame that fails a
//     connection, so that a peer that broke the protocol sees EOF.
//
// Input goes the other way: the runtime calls Feed with the bytes it read
// (or hands it a blocking socket with Attach), Gone when the socket ended, and
// Run once to run the handler.
type Transport interface {
	// Write writes all of b or fails, and returns how much it wrote. It
	// may block; past the write timeout it fails with an error that
	// matches os.ErrDeadlineExceeded, and the connection then closes with
	// 1008 as its peer stopped reading. Another failure ends the
	// connection (1006).
	Write(b []byte) (int, error)
	// Close closes the socket. It may be called more than once and must
	// not block.
	Close() error
}

// TryWriter is implemented by transports that can write without waiting.
type TryWriter interface {
	// TryWrite writes a and then b (either may be empty) as far as the
	// socket takes them now, without waiting, and returns how many bytes
	// of the two it wrote. A socket that takes nothing returns 0, nil.
	TryWrite(a, b []byte) (int, error)
}

// Backlogger is implemented by transports whose TryWrite takes every byte
// and hands it to an event loop, which holds what the peer has not read.
type Backlogger interface {
	// Backlog is the number of bytes taken and not yet written to the
	// socket, as last known: it may be stale, and then too high.
	Backlog() int
	// RefreshBacklog asks the loop for the exact figure and returns it.
	RefreshBacklog() int
	// WaitBacklog waits until the backlog is at most n bytes; it returns
	// false when deadline passes (a zero deadline: never) or done is
	// closed first.
	WaitBacklog(n int, deadline time.Time, done <-chan struct{}) bool
}

// Resumer is implemented by transports of event-loop runtimes, which feed
// input with Feed: Resume asks the loop to call Feed again after Feed
// reported that it paused.
type Resumer interface {
	Resume()
}

// closeWriter is the optional half-close of a transport.
type closeWriter interface {
	CloseWrite() error
}

// NetTransport is the Transport of a net.Conn: Write blocks with the write
// timeout as its deadline; on a socket (a syscall.Conn, such as
// *net.TCPConn) it also writes without waiting (TryWriter).
func NetTransport(c net.Conn, writeTimeout time.Duration) Transport {
	t := &netTransport{c: c, timeout: writeTimeout}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return &rawTransport{netTransport: t, rc: rc}
		}
	}
	return t
}

type netTransport struct {
	c       net.Conn
	timeout time.Duration
}

func (t *netTransport) Write(b []byte) (int, error) {
	if t.timeout <= 0 {
		return t.c.Write(b)
	}
	t.c.SetWriteDeadline(time.Now().Add(t.timeout))
	n, err := t.c.Write(b)
	// Not left for later writes: TryWrite (RawConn.Write) checks the
	// deadline too, and would fail once it passed, however idle since.
	t.c.SetWriteDeadline(time.Time{})
	return n, err
}

func (t *netTransport) Close() error { return t.c.Close() }

func (t *netTransport) CloseWrite() error {
	if cw, ok := t.c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// rawTransport is a netTransport over a socket: TryWrite writes on the
// non-blocking descriptor directly, in the sender's goroutine. Once a
// poller adopted the socket (event style, see poll_linux.go), every write
// and the close go to its descriptor instead; one that was under way on
// the net.Conn finishes there, and what it did not write goes on polled.
type rawTransport struct {
	*netTransport
	rc     syscall.RawConn
	polled atomic.Pointer[polled]
	closed atomic.Bool
}

func (t *rawTransport) Write(b []byte) (int, error) {
	if p := t.polled.Load(); p != nil {
		return p.write(b, t.deadline())
	}
	n, err := t.netTransport.Write(b)
	if p := t.moved(err); p != nil {
		var k int
		k, err = p.write(b[n:], t.deadline())
		n += k
	}
	return n, err
}

// moved returns the poller's socket when err is what an operation on the
// net.Conn got because adopt closed it meanwhile (not Close): the
// operation goes on there.
func (t *rawTransport) moved(err error) *polled {
	if !errors.Is(err, net.ErrClosed) || t.closed.Load() {
		return nil
	}
	return t.polled.Load()
}

// deadline is the end of a write that starts now.
func (t *rawTransport) deadline() time.Time {
	if t.timeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(t.timeout)
}

func (t *rawTransport) Close() error {
	t.closed.Store(true)
	if p := t.polled.Load(); p != nil {
		p.close()
	}
	return t.c.Close()
}

func (t *rawTransport) CloseWrite() error {
	if p := t.polled.Load(); p != nil {
		return p.closeWrite()
	}
	err := t.netTransport.CloseWrite()
	if p := t.moved(err); p != nil {
		return p.closeWrite()
	}
	return err
}

func (t *rawTransport) TryWrite(a, b []byte) (n int, err error) {
	if p := t.polled.Load(); p != nil {
		return p.tryWrite(a, b)
	}
	op := writeOps.Get().(*writeOp)
	op.a, op.b = a, b
	werr := t.rc.Write(op.fn)
	n, err = op.n, op.err
	*op = writeOp{fn: op.fn}
	writeOps.Put(op)
	if werr != nil {
		if p := t.moved(werr); p != nil {
			return p.tryWrite(a, b) // the callback did not run
		}
		return 0, werr
	}
	return n, err
}

// writeOp is one TryWrite: RawConn.Write's callback and what it writes and
// returns. They are pooled: a closure made for each write would cost three
// allocations (the closure and the two results it sets).
type writeOp struct {
	a, b []byte
	n    int
	err  error
	fn   func(fd uintptr) bool // op.write, bound once
}

func (op *writeOp) write(fd uintptr) bool {
	op.n, op.err = WriteNonblocking(int(fd), op.a, op.b)
	return true
}

var writeOps = sync.Pool{New: func() any {
	op := new(writeOp)
	op.fn = op.write
	return op
}}

// WriteNonblocking writes a then b on a non-blocking socket descriptor
// without waiting: it returns the bytes the socket took, 0 when it took
// none (EAGAIN). rawTransport writes with it inside RawConn.Write; a
// runtime may call it from any goroutine while it knows nothing is ahead
// of these bytes.
func WriteNonblocking(fd int, a, b []byte) (n int, err error) {
	for {
		if len(b) == 0 {
			n, err = unix.Write(fd, a)
		} else {
			n, err = writev(fd, a, b)
		}
		if err != unix.EINTR {
			break
		}
	}
	if n < 0 {
		n = 0
	}
	if err == unix.EAGAIN {
		err = nil
	}
	return n, err
}

// writev writes a then b (both not empty) with one writev(2). Not
// unix.Writev: it takes a slice of slices and builds eight iovecs in its
// frame, and a blocking handler sends from deep in its own stack.
func writev(fd int, a, b []byte) (int, error) {
	var iov [2]unix.Iovec
	iov[0].Base, iov[1].Base = &a[0], &b[0]
	iov[0].SetLen(len(a))
	iov[1].SetLen(len(b))
	n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), 2)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// AddrPort returns a's address and port.
func AddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
