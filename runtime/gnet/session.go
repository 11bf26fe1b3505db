package gnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/internal/conn"
)

const (
	stRequest   int32 = iota // reading the first request head
	stServing                // middleware and the upgrade running off the loop
	stAnswered               // the upgrade was taken, the 101 goes out: frames may come before the loop has the connection
	stOpen                   // WebSocket frames
	stRefused                // the upgrade was refused: the answer goes out, then the close
	stHandedOut              // given to net/http
)

// session is wsmatrix's state of one gnet connection, and its transport.
//
// Writes from any goroutine are appended to one batch, which a single
// task on the connection's loop writes: the bytes go out in the order of
// the calls, a burst of frames costs one task and one write, and the
// socket is closed or half-closed only after what was written before.
type session struct {
	gc    gnetv2.Conn // set when the connection joined its loop
	state atomic.Int32
	c     atomic.Pointer[conn.Conn]

	mu         sync.Mutex
	batch      *[]byte // bytes for the loop to write, in order; pooled, nil when none
	queued     bool    // a flush task is on the loop's queue
	closeWrite bool    // after the batch: end our sending side
	closing    bool    // after the batch: close the socket
	gone       bool    // gnet closed the connection (OnClose): its descriptor may be another's now
	refused    bool    // the loop refused a task: the engine is stopping (errRefused)

	inflight atomic.Int64 // bytes in the batch
	outbound atomic.Int64 // bytes gnet held for the peer after the last flush

	// in holds input Feed has not used yet: an incomplete frame, or what
	// arrived while the handler was behind (held, hold). Owned by the
	// loop; nil while idle. A pointer, so that a session fits in 80 bytes.
	in *[]byte
}

// feed runs on the loop when input arrived or Resume asked: it takes what
// gnet read, so gnet's own buffer stays empty (no copy on Peek, no ring
// that grows by doubling), and feeds it with what was left from before.
// gnet cannot stop reading a socket: while the handler is behind the input
// waits here, and the connection closes with 1008 once that passes its
// budget (conn.Conn.Unparsed).
func (sess *session) feed(gc gnetv2.Conn) { sess.feedFrom(gc, sess.c.Load()) }

// inbound is the part of a gnet connection feed reads.
type inbound interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
}

// feeder is the part of a connection feed feeds.
type feeder interface {
	Paused() bool
	Unparsed(n int)
	Feed(b []byte) (used int, paused bool)
}

// feedFrom is feed. What in.Peek returns is valid only until in.Discard:
// when gnet had kept input in its ring buffer (frames that came while the
// upgrade ran), Peek returns the ring's memory and Discard hands the ring
// back to a pool that every loop takes from. So Discard comes last, once
// what was not used is copied (it came first, and another loop wrote into
// a ring being parsed: a race the conformance kit found under -race).
func (sess *session) feedFrom(in inbound, c feeder) {
	buf, _ := in.Peek(-1)
	held := sess.held()
	if len(held) > 0 || (c.Paused() && len(buf) > 0) {
		held = append(held, buf...)
		buf = held
	}
	if c.Paused() {
		sess.hold(held)
		in.Discard(-1)
		c.Unparsed(len(held))
		return
	}
	used, _ := c.Feed(buf)
	rest := buf[used:]
	switch {
	case len(rest) == 0:
		held = held[:0]
		if cap(held) > maxIdleIn {
			held = nil
		}
	case len(held) > 0: // buf is held
		held = held[:copy(held, rest)]
	default:
		held = append(held[:0], rest...)
	}
	sess.hold(held)
	in.Discard(-1)
}

// held is the input feed keeps (in).
func (sess *session) held() []byte {
	if sess.in == nil {
		return nil
	}
	return *sess.in
}

// hold keeps b as the input for the next feed.
func (sess *session) hold(b []byte) {
	switch {
	case cap(b) == 0:
		sess.in = nil
	case sess.in == nil:
		sess.in = &b
	default:
		*sess.in = b
	}
}

// maxIdleIn is the largest input buffer a connection keeps between reads.
const maxIdleIn = 4 << 10

// opened runs on the loop when the connection joined it.
func (sess *session) opened(gc gnetv2.Conn) {
	sess.mu.Lock()
	sess.gc = gc
	sess.mu.Unlock()
}

// TryWrite writes a and b to the socket at once when nothing is ahead of
// them (no batch, no flush task, nothing held by gnet) and no received
// message waits for the handler, from the caller's goroutine: one system
// call instead of a task, an eventfd wake-up of the loop and the loop's
// write. Whatever the socket does not take is
// appended to the batch the loop writes next, as is everything while
// something is ahead; what the peer does not take stays in gnet's outbound
// buffer and counts in Backlog. It takes every byte and never waits.
//
// The direct write holds mu: gnet's OnClose takes mu (closed) before the
// descriptor is closed, so the number written to is never another
// connection's.
//
// A blocking handler's Send comes here, where a batch's storage may be
// allocated, and the loop's task queue allocates: the write to the socket
// and the append to the batch are out of line, and mu is not released by
// a defer, so that their locals do not deepen the path to those
// allocations (with pipelined 1 KiB messages, every blocking handler's
// 2 KiB stack doubled under them).
func (sess *session) TryWrite(a, b []byte) (int, error) {
	n := len(a) + len(b)
	sess.mu.Lock()
	if sess.refused {
		sess.mu.Unlock()
		return 0, errRefused
	}
	if sess.gone || sess.closing {
		sess.mu.Unlock()
		return 0, net.ErrClosed
	}
	if sess.batch == nil && !sess.queued && sess.outbound.Load() == 0 && !sess.moreComing() {
		k := sess.writeDirect(a, b)
		if k == n {
			sess.mu.Unlock()
			return n, nil
		}
		if k < len(a) {
			a = a[k:]
		} else {
			a, b = b[k-len(a):], nil
		}
	}
	sess.appendBatchLocked(a, b)
	err := sess.scheduleLocked()
	sess.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return n, nil
}

// writeDirect writes a and b to the socket without waiting and returns
// how much it took. A failed write counts as none: the loop's write of the
// batch fails too, and gnet closes the connection.
//
//go:noinline
func (sess *session) writeDirect(a, b []byte) int {
	k, err := conn.WriteNonblocking(sess.gc.Fd(), a, b)
	if err != nil {
		return 0
	}
	return k
}

// appendBatchLocked appends a and b to the batch, taking pooled storage
// for a new one. It grows the batch with conn.GrowBytes, not append
// (see TryWrite).
//
//go:noinline
func (sess *session) appendBatchLocked(a, b []byte) {
	n := len(a) + len(b)
	if sess.batch == nil {
		bp, ok := batches.Get().(*[]byte)
		if !ok {
			nb := make([]byte, 0, max(n, 2<<10))
			bp = &nb
		}
		sess.batch = bp
	}
	q := *sess.batch
	if cap(q)-len(q) < n {
		q = conn.GrowBytes(q, n)
	}
	l := len(q)
	q = q[:l+n]
	copy(q[l+copy(q[l:], a):], b)
	*sess.batch = q
	sess.inflight.Add(int64(n))
}

// moreComing reports whether messages received wait for the handler: the
// answers to them are likely to follow this frame, and one loop write of
// them all costs less than a system call each (pipelined requests).
func (sess *session) moreComing() bool {
	c := sess.c.Load()
	return c != nil && c.Waiting()
}

// Write is TryWrite: it never waits.
func (sess *session) Write(b []byte) (int, error) { return sess.TryWrite(b, nil) }

// scheduleLocked puts a flush task on the loop unless one is there.
func (sess *session) scheduleLocked() error {
	if sess.queued {
		return nil
	}
	if err := sess.gc.EventLoop().Execute(context.Background(), (*flushTask)(sess)); err != nil {
		sess.refused = true
		return fmt.Errorf("%w: %v", errRefused, err)
	}
	sess.queued = true
	return nil
}

// errRefused: the event loop refused to run a session's flush, as it does
// once the engine stops.
var errRefused = errors.New("wsmatrix: gnet: the event loop refused the write (the engine is stopping)")

// flushTask is a session as the loop's task that flushes it (no func
// value to allocate per connection).
type flushTask session

func (t *flushTask) Run(ctx context.Context) error { return (*session)(t).flush(ctx) }

// flush runs on the loop: it writes the batch (gnet keeps what the socket
// does not take), then half-closes or closes when asked. It stays queued
// (TryWrite appends, and does not write directly) until it finds nothing
// more to write.
func (sess *session) flush(context.Context) error {
	for pass := 0; ; pass++ {
		sess.mu.Lock()
		if sess.gone { // gnet writes to the descriptor number, which a new connection may hold now
			if bp := sess.batch; bp != nil {
				sess.batch = nil
				sess.inflight.Add(-int64(len(*bp)))
				putBatch(bp)
			}
			sess.queued = false // nothing more is taken: closed set gone
			sess.mu.Unlock()
			return nil
		}
		bp := sess.batch
		closeWrite, closing := sess.closeWrite, sess.closing
		if bp == nil && !closeWrite && !closing {
			sess.queued = false
			sess.mu.Unlock()
			return nil
		}
		if pass == maxFlushPasses { // senders keep refilling the batch: let the loop serve others, and come back
			sess.queued = false
			sess.scheduleLocked()
			sess.mu.Unlock()
			return nil
		}
		sess.batch = nil
		sess.closeWrite = false
		sess.mu.Unlock()
		var buf []byte
		if bp != nil {
			buf = *bp
			sess.gc.Write(buf) // on a failed write gnet closes the connection (OnClose) before it returns
		}
		out := sess.gc.OutboundBuffered()
		sess.outbound.Store(int64(out))
		sess.inflight.Add(-int64(len(buf)))
		if bp != nil {
			putBatch(bp)
		}
		sess.mu.Lock()
		gone := sess.gone // the write failed: the descriptor is closed, its number may be another's
		sess.mu.Unlock()
		switch {
		case gone:
			continue
		case closing:
			sess.gc.Close() // after what gnet holds is flushed
			sess.mu.Lock()
			sess.queued = false
			sess.mu.Unlock()
			return nil
		case closeWrite && out == 0:
			unix.Shutdown(sess.gc.Fd(), unix.SHUT_WR)
		}
	}
}

// maxFlushPasses bounds the batches one flush task writes: the loop serves
// its other connections between tasks.
const maxFlushPasses = 16

// closed runs on the loop in OnClose: nothing is written any more.
func (sess *session) closed() {
	sess.mu.Lock()
	sess.gone = true
	sess.mu.Unlock()
}

// Close closes the socket after everything written before.
func (sess *session) Close() error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closing {
		return nil
	}
	sess.closing = true
	if sess.scheduleLocked() != nil {
		return sess.gc.Close()
	}
	return nil
}

// CloseWrite half-closes after a protocol error's close frame, so the peer
// sees EOF.
func (sess *session) CloseWrite() error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.closeWrite = true
	return sess.scheduleLocked()
}

// Backlog is what waits in the batch, plus what gnet held for the peer
// after the last flush.
func (sess *session) Backlog() int { return int(sess.inflight.Load() + sess.outbound.Load()) }

// RefreshBacklog asks the loop how much gnet holds for the peer now.
func (sess *session) RefreshBacklog() int {
	done := make(chan struct{})
	err := sess.gc.EventLoop().Execute(context.Background(), gnetv2.RunnableFunc(func(context.Context) error {
		sess.outbound.Store(int64(sess.gc.OutboundBuffered()))
		close(done)
		return nil
	}))
	if err == nil {
		select {
		case <-done:
		case <-time.After(time.Second): // a stopped loop never answers
		}
	}
	return sess.Backlog()
}

// WaitBacklog polls the loop, backing off to 50 ms, until the backlog is
// at most n: gnet tells nobody when a peer reads what it holds.
func (sess *session) WaitBacklog(n int, deadline time.Time, done <-chan struct{}) bool {
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if sess.RefreshBacklog() <= n {
			return true
		}
		wait := delay
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			wait = min(wait, left)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return true
		}
	}
}

// Resume asks the loop to parse again once the handler took a message.
func (sess *session) Resume() { sess.gc.Wake(nil) }

// batches pools the buffers of write batches across sessions: an idle
// connection holds none (gnet copies what the socket does not take).
var batches sync.Pool // of *[]byte

// putBatch empties a batch and pools it, unless it grew large.
func putBatch(bp *[]byte) {
	if cap(*bp) > 64<<10 {
		return
	}
	*bp = (*bp)[:0]
	batches.Put(bp)
}
