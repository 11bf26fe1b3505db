package conn

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Event-style connections of the blocking runtimes (stdhttp, fasthttp) are
// read from an epoll set of the server's own once their handler switched
// to OnMessage: the helper goroutine that read for the callbacks hands the
// socket to a poller and ends. An idle event-style connection then holds
// no goroutine, and a message costs one read (level-triggered: the socket
// is read once each time epoll reports it readable), where a goroutine
// parked in Go's poller reads until the socket is empty, one empty read a
// message. Blocking handlers keep reading their socket themselves.
//
// The socket leaves Go's poller: adopt duplicates its descriptor and
// closes the net.Conn, and from then on the transport reads, writes and
// closes the duplicate (polled).

// polls is the process's set of pollers, shared by every server. A poller
// starts with the first connection it is given and ends with its last one,
// so that a process with no such connection runs none.
var polls struct {
	mu   sync.Mutex
	set  []*poller // GOMAXPROCS of them, up to 8; nil: not running
	next int
}

// poller reads the connections registered in its epoll set and wakes the
// writers that wait for room in their socket.
type poller struct {
	slot         int // in polls.set
	epfd, wakefd int
	ep           *os.File        // epfd, in Go's poller: the loop waits there
	wait         syscall.RawConn // ep's
	buf          []byte          // the loop's read buffer

	mu      sync.Mutex
	conns   map[int32]*polled // by descriptor
	resumed []*polled         // asked to read again (Conn.resumeReader)
	stopped bool              // the loop ended and closed its descriptors: nothing wakes it
}

// pollReads is how many reads one readiness report gets at most, while
// each fills the read buffer: a peer that sends much gets its share, not
// the poller.
const pollReads = 16

// register gives p to the next poller, started if need be.
func register(p *polled) error {
	polls.mu.Lock()
	defer polls.mu.Unlock()
	if polls.set == nil {
		polls.set = make([]*poller, min(runtime.GOMAXPROCS(0), 8))
	}
	i := polls.next % len(polls.set)
	polls.next++
	pl := polls.set[i]
	if pl == nil {
		var err error
		if pl, err = newPoller(); err != nil {
			return err
		}
		pl.slot = i
		polls.set[i] = pl
		go pl.run()
	}
	pl.mu.Lock()
	pl.conns[int32(p.fd)] = p
	pl.mu.Unlock()
	p.pl = pl
	return nil
}

// done ends the loop when it has no connection left.
func (pl *poller) done() bool {
	polls.mu.Lock()
	defer polls.mu.Unlock()
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if len(pl.conns) > 0 || len(pl.resumed) > 0 {
		return false
	}
	polls.set[pl.slot] = nil
	pl.stopped = true
	return true
}

// newPoller makes a poller's epoll set and puts it in Go's poller: the loop
// never blocks a thread in epoll_wait (which would hold its P until the
// scheduler took it back, keeping the callbacks the loop just scheduled
// waiting) but parks like any goroutine reading a socket, and epoll_wait
// is only called with a zero timeout.
func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	pl := &poller{epfd: epfd, wakefd: wakefd, conns: map[int32]*polled{}}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		pl.closeFds()
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		pl.closeFds()
		return nil, err
	}
	pl.ep = os.NewFile(uintptr(epfd), "epoll") // non-blocking: os registers it with Go's poller
	// A file Go's poller refused (its own epoll_ctl failed: ENOSPC,
	// ENOMEM) is kept as a blocking one, and waiting on it would fail:
	// only a polled file takes a deadline.
	if err := pl.ep.SetReadDeadline(time.Time{}); err != nil {
		pl.closeFds()
		return nil, err
	}
	if pl.wait, err = pl.ep.SyscallConn(); err != nil {
		pl.closeFds()
		return nil, err
	}
	return pl, nil
}

func (pl *poller) closeFds() {
	unix.Close(pl.wakefd)
	if pl.ep != nil {
		pl.ep.Close()
	} else {
		unix.Close(pl.epfd)
	}
}

// wakeLocked makes the loop look at resumed and at whether it has
// connections left. The caller holds pl.mu, under which the loop marks
// itself stopped before it closes wakefd: no wake ever writes to a number
// that may belong to another file by then.
func (pl *poller) wakeLocked() {
	if pl.stopped {
		return
	}
	one := [8]byte{1}
	for {
		if _, err := unix.Write(pl.wakefd, one[:]); err != unix.EINTR {
			return
		}
	}
}

type readyConn struct {
	p      *polled
	events uint32
}

// run is the loop: wait for readiness, read and feed, wake writers, until
// the last connection is gone.
func (pl *poller) run() {
	defer pl.closeFds()
	pl.buf = make([]byte, ReadBufferSize)
	events := make([]unix.EpollEvent, 256)
	var ready []readyConn
	var resumed []*polled
	var n int
	var werr error
	poll := func(fd uintptr) bool {
		for {
			n, werr = unix.EpollWait(int(fd), events, 0)
			if werr != unix.EINTR {
				return n > 0 || werr != nil // none ready: park until Go's poller reports the set readable
			}
		}
	}
	for {
		err := pl.wait.Read(poll)
		if err == nil {
			err = werr
		}
		if err != nil {
			panic("wsmatrix: epoll_wait: " + err.Error()) // EBADF, EFAULT, EINVAL: a bug of this file
		}
		// The wake is taken before what it announces: a wake that comes
		// after this read is seen by the next epoll_wait, one before it
		// finds its entry in resumed below.
		woken := false
		for _, ev := range events[:n] {
			if int(ev.Fd) == pl.wakefd {
				woken = true
				var b [8]byte
				unix.Read(pl.wakefd, b[:])
			}
		}
		if h := testHookPollerWoken.Load(); h != nil && woken {
			(*h)()
		}
		pl.mu.Lock()
		for _, ev := range events[:n] {
			if int(ev.Fd) != pl.wakefd {
				if p := pl.conns[ev.Fd]; p != nil {
					ready = append(ready, readyConn{p, ev.Events})
				}
			}
		}
		resumed, pl.resumed = pl.resumed, resumed[:0]
		pl.mu.Unlock()
		for i, r := range ready {
			r.p.ready(r.events, pl.buf)
			ready[i] = readyConn{}
		}
		ready = ready[:0]
		for i, p := range resumed {
			p.resume(pl.buf)
			resumed[i] = nil
		}
		if woken && pl.done() {
			return
		}
	}
}

// polled is a socket taken out of Go's poller and read by a poller.
type polled struct {
	c  *Conn
	pl *poller
	fd int

	// refs counts the uses of fd in progress, and has refClosed once the
	// transport closed: the last use closes fd, so that no read or write
	// ever reaches a descriptor number given to another socket meanwhile.
	refs atomic.Uint64

	reading atomic.Bool // the loop may read: Feed is not paused, and the socket did not end
	pending []byte      // input Feed did not take; the loop's, as is eof
	eof     bool        // the socket ended or failed: nothing more is read

	mu       sync.Mutex // guards what follows
	added    bool       // fd is in the epoll set
	mask     uint32     // with these events
	wantIn   bool
	wantOut  bool          // a writer waits for room
	writable chan struct{} // made for the first writer that waits; closed by close
}

const refClosed = 1 << 62

func (p *polled) acquire() bool {
	for {
		v := p.refs.Load()
		if v&refClosed != 0 {
			return false
		}
		if p.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// closedLocked reports whether close ran, or runs: with p.mu held, its
// close of writable comes after (the caller may still send on it) or
// came before (the caller must not).
func (p *polled) closedLocked() bool { return p.refs.Load()&refClosed != 0 }

func (p *polled) release() {
	if p.refs.Add(^uint64(0)) == refClosed {
		p.destroy()
	}
}

// close ends every use of the socket; the last one in progress closes it.
// It never waits.
func (p *polled) close() {
	for {
		v := p.refs.Load()
		if v&refClosed != 0 {
			return
		}
		if p.refs.CompareAndSwap(v, v|refClosed) {
			if v == 0 {
				p.destroy()
			}
			break
		}
	}
	p.mu.Lock()
	if p.writable != nil {
		close(p.writable)
	}
	p.mu.Unlock()
}

// destroy closes the descriptor, which takes it out of the epoll set.
func (p *polled) destroy() {
	pl := p.pl
	pl.mu.Lock()
	if pl.conns[int32(p.fd)] == p {
		delete(pl.conns, int32(p.fd))
	}
	unix.Close(p.fd)
	if len(pl.conns) == 0 {
		pl.wakeLocked() // the loop ends
	}
	pl.mu.Unlock()
}

// setLocked registers in the epoll set what the connection waits for:
// input unless paused or ended, room when a writer waits. The caller holds
// p.mu and a use of fd, and calls failed with the error once it let p.mu go.
func (p *polled) setLocked() error {
	var mask uint32
	if p.wantIn {
		mask |= unix.EPOLLIN
	}
	if p.wantOut {
		mask |= unix.EPOLLOUT
	}
	p.reading.Store(p.wantIn)
	var op int
	switch {
	case mask == 0 && !p.added:
		return nil
	case mask == 0:
		// Not left in with no interest (adopt adds with none): a socket
		// that failed reports EPOLLHUP/EPOLLERR whatever the mask, again
		// and again, and the loop would spin on it.
		op = unix.EPOLL_CTL_DEL
	case !p.added:
		op = unix.EPOLL_CTL_ADD
	case mask == p.mask:
		return nil
	default:
		op = unix.EPOLL_CTL_MOD
	}
	err := unix.EpollCtl(p.pl.epfd, op, p.fd, &unix.EpollEvent{Events: mask, Fd: int32(p.fd)})
	if err != nil && op != unix.EPOLL_CTL_DEL {
		// ENOMEM, or ENOSPC past fs.epoll.max_user_watches.
		p.wantIn, p.wantOut = false, false
		p.reading.Store(false)
		return err
	}
	p.added, p.mask = op != unix.EPOLL_CTL_DEL, mask
	return nil
}

// failed ends the connection whose socket the epoll set refused.
func (p *polled) failed(err error) {
	if err != nil {
		p.c.Gone(fmt.Errorf("epoll_ctl: %w", err))
	}
}

// reserve adds the socket to the epoll set with no events yet, while it
// can still stay with the helper: what the set may refuse (ENOSPC past
// fs.epoll.max_user_watches, ENOMEM) it refuses here.
func (p *polled) reserve() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := unix.EpollCtl(p.pl.epfd, unix.EPOLL_CTL_ADD, p.fd, &unix.EpollEvent{Fd: int32(p.fd)}); err != nil {
		return err
	}
	p.added = true
	return nil
}

// setWant sets want (&p.wantIn or &p.wantOut) to v and registers the
// change. The caller holds a use of fd.
func (p *polled) setWant(want *bool, v bool) {
	var err error
	p.mu.Lock()
	if *want != v {
		*want = v
		err = p.setLocked()
	}
	p.mu.Unlock()
	p.failed(err)
}

// wantInput registers the socket for input unless Feed is paused. Paused
// is read under p.mu, which the loop's resume holds to set wantIn: a
// resume asked meanwhile (resumeReader clears paused, then asks) is
// either seen here or comes after, never undone.
func (p *polled) wantInput() {
	if !p.acquire() {
		return
	}
	p.mu.Lock()
	p.wantIn = !p.c.Paused()
	err := p.setLocked()
	p.mu.Unlock()
	p.release()
	p.failed(err)
}

// ready handles what epoll reported for the socket, in the loop.
func (p *polled) ready(events uint32, buf []byte) {
	if !p.acquire() {
		return
	}
	defer p.release()
	if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		var err error
		p.mu.Lock()
		if p.wantOut && !p.closedLocked() {
			p.wantOut = false
			err = p.setLocked()
			select {
			case p.writable <- struct{}{}:
			default:
			}
		}
		p.mu.Unlock()
		p.failed(err)
	}
	if events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 && p.reading.Load() {
		p.read(buf)
	}
}

// read reads the socket and feeds what it read, a read buffer at a time as
// a blocking reader does: Feed may leave what it read unused when it
// pauses, and that stays under ReadBufferSize (checkFlood's bound for a
// runtime that stops reading) while the kernel holds the rest. A read
// that fills the buffer is followed by another, up to pollReads; one that
// does not ends the turn, and level-triggered epoll reports the socket
// again if anything is left, an end (FIN) read with the data included.
func (p *polled) read(buf []byte) {
	for range pollReads {
		k, err := readFd(p.fd, buf)
		switch {
		case err == unix.EAGAIN:
			return
		case err != nil || k == 0:
			p.ended(err)
			return
		}
		if len(p.pending) > 0 {
			p.pending = append(p.pending, buf[:k]...)
			p.feed(p.pending, true)
		} else {
			p.feed(buf[:k], false)
		}
		if k < len(buf) || !p.reading.Load() {
			return
		}
	}
}

// feed feeds data, which is pending or the loop's buffer, and keeps in
// pending what Feed did not take.
func (p *polled) feed(data []byte, isPending bool) {
	used, paused := p.c.Feed(data)
	rest := data[used:]
	switch {
	case len(rest) == 0:
		p.pending = nil // an idle connection holds no buffer
	case isPending:
		p.pending = p.pending[:copy(p.pending, rest)]
	default:
		p.pending = append([]byte(nil), rest...)
	}
	if paused {
		p.setWant(&p.wantIn, false)
	}
}

// resume feeds what waited while Feed was paused and reads again, in the
// loop.
func (p *polled) resume(buf []byte) {
	if !p.acquire() {
		return
	}
	defer p.release()
	if p.c.Paused() {
		return // paused again meanwhile: a later resume comes
	}
	if len(p.pending) > 0 {
		p.feed(p.pending, true)
		if p.c.Paused() {
			return
		}
	}
	if !p.eof {
		p.setWant(&p.wantIn, true)
	}
}

// ended: the socket ended (EOF) or failed. What was read is fed and the
// connection is told.
func (p *polled) ended(err error) {
	if err == nil {
		err = io.EOF
	}
	if len(p.pending) > 0 {
		p.c.Feed(p.pending)
		p.pending = nil
	}
	p.eof = true
	p.mu.Lock()
	p.wantIn = false
	p.setLocked() // an error: the connection ends anyway
	p.mu.Unlock()
	p.c.uncork() // a peer that ended its sending side may still read the answers
	p.c.Gone(err)
}

// askResume has the loop resume the connection.
func (p *polled) askResume() {
	pl := p.pl
	pl.mu.Lock()
	if !pl.stopped { // stopped: p was closed, there is nothing to read
		pl.resumed = append(pl.resumed, p)
		pl.wakeLocked()
	}
	pl.mu.Unlock()
}

// testHookPollerWoken runs in the loop after it took a wake, before it
// takes the resumed list.
var testHookPollerWoken atomic.Pointer[func()]

// tryWrite is TryWrite on the polled socket.
func (p *polled) tryWrite(a, b []byte) (int, error) {
	if !p.acquire() {
		return 0, net.ErrClosed
	}
	defer p.release()
	return WriteNonblocking(p.fd, a, b)
}

// write is Write on the polled socket: it waits for room through the
// poller, until deadline (zero: for good).
func (p *polled) write(b []byte, deadline time.Time) (int, error) {
	n := 0
	for {
		k, err := p.tryWrite(b[n:], nil)
		n += k
		if err != nil || n == len(b) {
			return n, err
		}
		if err := p.waitWritable(deadline); err != nil {
			return n, err
		}
	}
}

// waitWritable waits until epoll reports room in the socket (or an error,
// which the next write returns), the transport closes or deadline passes.
func (p *polled) waitWritable(deadline time.Time) error {
	if !p.acquire() {
		return net.ErrClosed
	}
	p.mu.Lock()
	if p.closedLocked() { // close found no channel to close: nothing would end the wait
		p.mu.Unlock()
		p.release()
		return net.ErrClosed
	}
	if p.writable == nil {
		p.writable = make(chan struct{}, 1)
	}
	ch := p.writable
	p.wantOut = true
	err := p.setLocked()
	p.mu.Unlock()
	p.release()
	if err != nil {
		return err
	}
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
		return nil
	case <-timeout:
		p.mu.Lock()
		if p.wantOut && p.acquire() {
			p.wantOut = false
			p.setLocked() // an error: the write fails anyway
			p.release()
		}
		p.mu.Unlock()
		return os.ErrDeadlineExceeded
	}
}

// closeWrite sends FIN.
func (p *polled) closeWrite() error {
	if !p.acquire() {
		return net.ErrClosed
	}
	defer p.release()
	return unix.Shutdown(p.fd, unix.SHUT_WR)
}

// epollLog limits the warnings of failed adoptions to one a second.
var epollLog LogLimit

// readFd reads fd once, again after EINTR.
func readFd(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			if n < 0 {
				n = 0
			}
			return n, err
		}
	}
}

// adopt hands the connection's socket to a poller: the helper calls it,
// holding rd.role, once the connection switched to event style. It reports
// false when the socket stays with the helper (no raw socket, TLS, a
// transport of the runtime's own, no poller). The role stays held and
// rd.helping set for good: from here on only the poller reads.
func (c *Conn) adopt() bool {
	rd := c.rd
	t, ok := c.t.(*rawTransport)
	if !ok || rd.rc == nil || rd.r != io.Reader(t.c) {
		return false
	}
	fd := -1
	var derr error
	if err := rd.rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || derr != nil {
		return false
	}
	p := &polled{c: c, fd: fd}
	refused := func(err error) bool {
		if ok, _ := epollLog.Allow(); ok {
			c.srv.opts.Logger.Warn("wsmatrix: epoll: this event-style connection keeps a reading goroutine", "err", err)
		}
		return false
	}
	if err := register(p); err != nil {
		unix.Close(fd)
		return refused(err)
	}
	if err := p.reserve(); err != nil {
		p.close()
		return refused(err)
	}
	if rd.buf != nil && rd.n > 0 {
		p.pending = append([]byte(nil), (*rd.buf)[:rd.n]...)
		rd.n = 0
	}
	rd.releaseIdleBuf()
	rd.buf = nil // a larger one (the prefix's) is not kept either
	// Read before the loop may see p (a resume through polled, a
	// readiness once registered): pending is the loop's from then on.
	pending := len(p.pending) > 0
	t.polled.Store(p)
	if t.closed.Load() { // Close came first: it may not have seen polled
		p.close()
	}
	// Go's poller lets go of the socket; a write in progress there
	// finishes, and the next goes to fd (rawTransport).
	t.c.Close()
	p.wantInput()
	if pending {
		p.askResume()
	}
	return true
}
