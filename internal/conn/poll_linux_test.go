package conn

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/api"
)

// socketPolled registers one end of a socket pair with a poller, as adopt
// does, and returns it with the other end.
func socketPolled(t *testing.T) (*polled, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &polled{c: &Conn{}, fd: fds[0]}
	if err := register(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.close()
		unix.Close(fds[1])
	})
	return p, fds[1]
}

func (p *polled) wantsInput() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wantIn
}

// A resume asked while the loop handles a wake is not lost: the loop takes
// the wake before the list of resumes, so a wake that comes between the two
// wakes it again. Taken the other way round, the second resume's wake was
// read with the first's and its connection stayed unread for good.
func TestPollerKeepsAResumeAskedWhileWoken(t *testing.T) {
	a, _ := socketPolled(t)
	b, _ := socketPolled(t)
	for b.pl != a.pl { // both on one poller
		b, _ = socketPolled(t)
	}
	asked := make(chan struct{})
	hook := func() {
		select {
		case <-asked:
		default:
			close(asked)
			b.askResume()
		}
	}
	testHookPollerWoken.Store(&hook)
	defer testHookPollerWoken.Store(nil)
	a.askResume()
	waitFor(t, "both connections resumed (the second asked while the loop was woken)", func() bool { return a.wantsInput() && b.wantsInput() })
}

// A poller that ended writes nothing more to the descriptors it closed: a
// wake for it (a connection's resume, racing with its close) would have
// written 8 bytes to whatever file got that number next.
func TestPollerThatEndedTakesNoWake(t *testing.T) {
	p, _ := socketPolled(t)
	pl := p.pl
	wakefd := pl.wakefd
	p.close() // its last connection: the loop ends and closes its descriptors
	waitFor(t, "the poller to end with its last connection", func() bool { pl.mu.Lock(); defer pl.mu.Unlock(); return pl.stopped })
	// The loop closes wakefd right after it marks itself stopped.
	waitFor(t, "the ended poller to close its eventfd", func() bool {
		_, err := unix.FcntlInt(uintptr(wakefd), unix.F_GETFD, 0)
		return err == unix.EBADF
	})
	// Another file takes the number: one end of a socket pair, whose
	// other end then receives what is written to it.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	other := fds[1]
	switch wakefd {
	case fds[0]:
	case fds[1]:
		other = fds[0]
	default:
		if err := unix.Dup3(fds[0], wakefd, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(wakefd)
	}
	p.askResume()
	var b [16]byte
	if n, err := unix.Read(other, b[:]); err != unix.EAGAIN {
		t.Fatalf("a file that took the ended poller's eventfd number received %d bytes (%v)", n, err)
	}
}

// A pipelining peer of a slow event-style handler with a small budget
// (ReadLimit = InboxBytes = 8 KiB) is pushed back by TCP, as on any
// blocking socket, and never cut with 1008: the poller reads a read
// buffer at a time, so what a paused Feed leaves unused stays under
// checkFlood's bound. Read 64 KiB at a time, it was cut before its first
// echo.
func TestPolledSlowHandlerPushesBackWithASmallBudget(t *testing.T) {
	o := quiet()
	o.ReadLimit, o.InboxBytes = 8<<10, 8<<10
	s := newTestServer(t, o)
	client, c := tcpConn(t, s, nil, func(ws api.Conn) {
		ws.OnMessage(func(m api.Message) {
			time.Sleep(2 * time.Millisecond)
			ws.Send(m)
		})
	})
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wsutil.WriteClientBinary(client, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := wsutil.ReadServerBinary(client); err != nil {
		t.Fatal(err)
	}
	if c.t.(*rawTransport).polled.Load() == nil {
		t.Fatal("the event-style connection was not given to a poller")
	}
	const n = 200
	var burst []byte
	for range n {
		burst = append(burst, clientFrame(ws.OpBinary, make([]byte, 100))...)
	}
	if _, err := client.Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		msgs, err := wsutil.ReadServerMessage(client, nil)
		if err != nil {
			t.Fatalf("echo %d of %d: %v", i, n, err)
		}
		for _, m := range msgs {
			if m.OpCode == ws.OpClose {
				code, reason := ws.ParseCloseFrameData(m.Payload)
				t.Fatalf("closed after %d of %d echoes: %d %q", i, n, code, reason)
			}
		}
	}
}

// adoptedConn serves h on a real socket with InboxSize 1, so that Feed
// pauses at the second message a callback has not taken.
func adoptedConn(t *testing.T, h api.Handler) (net.Conn, *Conn) {
	o := quiet()
	o.InboxSize = 1
	return tcpConn(t, newTestServer(t, o), nil, h)
}

func polledOf(c *Conn) *polled { return c.t.(*rawTransport).polled.Load() }

// A handler that switches to event style late (after the helper started
// reading for it) has its socket given to a poller at once, not only after
// the next message: the helper waiting in Go's poller held a goroutine for
// an idle connection until then.
func TestLateOnMessageAdoptsAtOnce(t *testing.T) {
	_, c := adoptedConn(t, func(ws api.Conn) {
		time.Sleep(100 * time.Millisecond) // over awayGrace: a helper reads meanwhile
		ws.OnMessage(func(api.Message) {})
	})
	waitFor(t, "the socket to be given to a poller with no message sent", func() bool { return polledOf(c) != nil })
}

// inEpollSet reports whether the kernel lists fd in the epoll set epfd.
func inEpollSet(t *testing.T, epfd, fd int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", epfd))
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(fmt.Sprintf(`(?m)^tfd:\s+%d\s`, fd)).Match(b)
}

// A socket adopted while Feed is paused (reserved in the set with no
// events, then registered for what it waits for: nothing) leaves the set
// until resumed. Left in with no interest, a peer's reset
// (EPOLLERR|EPOLLHUP, reported whatever the interest) made the loop spin
// until the handler took a message.
func TestPausedAtAdoptionIsNotInTheSet(t *testing.T) {
	p, _ := socketPolled(t)
	if err := p.reserve(); err != nil {
		t.Fatal(err)
	}
	if !inEpollSet(t, p.pl.epfd, p.fd) {
		t.Fatal("reserve: the socket is not in the epoll set")
	}
	p.c.flags.set(paused, true)
	p.wantInput()
	if inEpollSet(t, p.pl.epfd, p.fd) {
		t.Fatal("a paused socket stays in the epoll set with no interest")
	}
	p.c.flags.set(paused, false)
	p.askResume()
	waitFor(t, "the resumed socket back in the epoll set", func() bool { return inEpollSet(t, p.pl.epfd, p.fd) })
}

// A handler that switched to event style before the runtime attached the
// socket (fasthttp runs the handler before its hijack) has a helper read
// (and hand the socket to a poller) from Attach on, not after awayGrace.
func TestOnMessageBeforeAttachReadsAtOnce(t *testing.T) {
	client, server := tcpPair(t)
	c := serverConn(newTestServer(t, quiet()), NetTransport(server, 10*time.Second), nil)
	switched, ran := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ran)
		c.Run(func(ws api.Conn) {
			ws.OnMessage(func(m api.Message) { ws.Send(m) })
			close(switched)
		})
	}()
	t.Cleanup(func() {
		client.Close()
		server.Close()
		<-ran
	})
	<-switched
	c.Attach(server, nil)
	if !c.rd.helping.Load() {
		t.Fatal("Attach after OnMessage started no reader: the socket waits for awayGrace")
	}
	client.SetDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientBinary(client, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if p, err := wsutil.ReadServerBinary(client); err != nil || string(p) != "x" {
		t.Fatalf("echo: %q %v", p, err)
	}
}

// A prefix read with the upgrade request (its own buffer, larger than a
// pooled one) is not kept by a connection a poller took over.
func TestAdoptionKeepsNoPrefixBuffer(t *testing.T) {
	prefix := clientFrame(ws.OpBinary, make([]byte, 4000))
	client, c := tcpConn(t, newTestServer(t, quiet()), prefix, func(ws api.Conn) {
		ws.OnMessage(func(m api.Message) { ws.Send(m) })
	})
	client.SetDeadline(time.Now().Add(5 * time.Second))
	if p, err := wsutil.ReadServerBinary(client); err != nil || len(p) != 4000 {
		t.Fatalf("echo of the prefix: %d bytes, %v", len(p), err)
	}
	waitFor(t, "adoption", func() bool { return polledOf(c) != nil })
	if c.rd.buf != nil {
		t.Fatalf("the reader still holds a %d-byte buffer after the adoption", cap(*c.rd.buf))
	}
}
