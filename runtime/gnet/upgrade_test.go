package gnet

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
)

// A client may send frames as soon as it reads the 101: frames that
// arrive before the upgrading goroutine hands the connection to the loop
// are kept (up to the connection's own budget), not cut by the bound on
// what may come before the answer. The connection was closed when a 64 KiB
// frame came in that window (kit bounds/pipelining_peer_that_reads_is_never_cut
// failed with EOF under CPU contention).
func TestFramesRightAfterThe101AreKept(t *testing.T) {
	testHookBeforeRun = func() { time.Sleep(100 * time.Millisecond) }
	t.Cleanup(func() { testHookBeforeRun = nil }) // after start's Shutdown: the upgrade goroutines have ended
	addr := start(t, api.Options{}, 1, func(r *api.Router) { r.Handle("/echo", handlers.Echo) })
	nc, br := dialUpgrade(t, addr, "/echo")
	defer nc.Close()
	const n, size = 4, 64 << 10
	var frames bytes.Buffer
	for range n {
		ws.WriteHeader(&frames, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: size, Masked: true})
		frames.Write(make([]byte, size)) // zero mask: the payload as is
	}
	go func() {
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		nc.Write(frames.Bytes())
	}()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		p, op, err := wsutil.ReadServerData(struct {
			io.Reader
			io.Writer
		}{br, nc})
		if err != nil || op != ws.OpBinary || len(p) != size {
			t.Fatalf("echo %d: %v, %d bytes, %v", i, op, len(p), err)
		}
	}
}

// scribbledInput is gnet's input as feed sees it when gnet kept frames in
// its ring buffer: Peek returns the ring's memory, and Discard hands the
// ring to a pool, where another loop may take it and write into it (here:
// at once, with 0xFF).
type scribbledInput struct{ b []byte }

func (s *scribbledInput) Peek(int) ([]byte, error) { return s.b, nil }

func (s *scribbledInput) Discard(int) (int, error) {
	n := len(s.b)
	for i := range s.b {
		s.b[i] = 0xFF
	}
	s.b = s.b[n:]
	return n, nil
}

// takingFeeder takes up to take bytes per Feed and records them.
type takingFeeder struct {
	take int
	fed  []byte
}

func (f *takingFeeder) Paused() bool { return false }
func (f *takingFeeder) Unparsed(int) {}
func (f *takingFeeder) Feed(b []byte) (int, bool) {
	n := min(f.take, len(b))
	f.fed = append(f.fed, b[:n]...)
	return n, false
}

// feed reads what gnet kept before it lets gnet release it, and keeps a
// copy of what Feed did not use: gnet's Discard returns its ring buffer to
// a pool that other loops write into. Feed parsed the ring after Discard
// (a race the conformance kit found under -race, and a message could be
// corrupted).
func TestFeedReadsInputBeforeGnetReleasesIt(t *testing.T) {
	var sess session
	f := &takingFeeder{take: 5}
	sess.feedFrom(&scribbledInput{b: []byte("hello world")}, f)
	if string(f.fed) != "hello" {
		t.Fatalf("fed %q, want %q", f.fed, "hello")
	}
	f.take = 100
	sess.feedFrom(&scribbledInput{}, f)
	if string(f.fed) != "hello world" {
		t.Fatalf("fed %q, want %q: the rest was not kept", f.fed, "hello world")
	}
}

// A server that starts on a port other servers already serve (ReusePort:
// `wsmatrix serve --workers`, a worker starting or restarting) resets none
// of the connections that arrive meanwhile. It held the port with a
// listening socket until its engine had bound it: the kernel spread new
// connections over that socket too, nobody accepted them, and closing it
// reset them (TestReach failed with "reset: 5" in one of eight CI runs).
func TestReusePortStartResetsNothing(t *testing.T) {
	o := api.Options{ReusePort: true}
	first := start(t, o, 1, func(r *api.Router) { r.Handle("/echo", handlers.Echo) })
	testHookProbed = func() { time.Sleep(300 * time.Millisecond) } // the window in which a starting server held the port
	t.Cleanup(func() { testHookProbed = nil })
	var resets, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, _, _, err := ws.Dial(t.Context(), "ws://"+first+"/echo")
				if err != nil {
					if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
						resets.Add(1)
					}
					continue
				}
				served.Add(1)
				c.Close()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	second := start(t, o, 1, func(r *api.Router) { r.Handle("/echo", handlers.Echo) }, first)
	time.Sleep(100 * time.Millisecond) // connections go to both now
	close(stop)
	wg.Wait()
	t.Logf("%d handshakes, %d reset, while a second server started on %s", served.Load(), resets.Load(), second)
	if served.Load() == 0 {
		t.Fatal("no handshake completed")
	}
	if n := resets.Load(); n > 0 {
		t.Fatalf("%d handshakes reset while a second server started on the same port", n)
	}
}

// Shutdown waits for gnet's Run to return, within its bound: gnet's Stop
// reports the engine stopped a moment before Run returns, and Shutdown,
// which did not wait for that moment, failed with "the engine did not
// stop" (once in 31 CI runs of the conformance kit).
func TestShutdownWaitsForRunToReturn(t *testing.T) {
	testHookRunReturned = func() { time.Sleep(700 * time.Millisecond) } // past gnet Stop's first poll, at 500 ms
	t.Cleanup(func() { testHookRunReturned = nil })
	r := api.NewRouter()
	r.Handle("/echo", handlers.Echo)
	s, err := New(r, api.Options{}, WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
