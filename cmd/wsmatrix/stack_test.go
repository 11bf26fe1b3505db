package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/loadtest"
)

// TestBlockingHandlersKeepTheirFirstStack: a blocking handler reads,
// parses and sends from its own goroutine, and one message must not grow
// that goroutine's stack past its first 2 KiB. Every connection's stack
// doubled on its first echo (go_memstats_stack_inuse_bytes grew by about
// 2 KiB per connection, on every runtime), until the receive and send
// paths were made shallower; then one 1 KiB message in three doubled it
// (see below). The server is this package's binary, built without -race
// (the race detector's stack guard is larger). The same holds in event
// style for the goroutine that reads for the callbacks on stdhttp and
// fasthttp (a helper): a change that fed what it read from inside its
// read callback, three frames deeper than its read loop, doubled every
// helper's stack on the first echo (2.1 KiB a connection).
func TestBlockingHandlersKeepTheirFirstStack(t *testing.T) {
	const conns = 2000
	for _, rt := range runtimes {
		for _, path := range []string{"/echo", "/echo-event"} {
			t.Run(rt+path, func(t *testing.T) { stackSteps(t, rt, path, conns) })
		}
	}
}

func stackSteps(t *testing.T, rt, path string, conns int) {
	s := startServe(t, "--runtime="+rt, "--admin-addr=127.0.0.1:0")
	admin := s.admin(t)
	o, err := loadtest.Open(context.Background(), loadtest.OpenConfig{URL: "ws://" + s.addr + path, Conns: conns, Handshake: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Held != conns {
		t.Fatalf("held %d of %d: %v", o.Held, conns, o.Errors)
	}
	// Each step writes to every connection in one write and reads
	// the answers; its bound is on the growth of the stacks in use,
	// per connection.
	steps := []struct {
		name    string
		frames  []byte // what each connection writes
		answers int
		size    int // of each answer
		bound   float64
	}{
		{"one 64-byte echo", clientFrames(1, 64, 1), 1, 64, 1024},
		// A 1 KiB message: its allocation, and the answer's frame,
		// come from spans of a larger size class, whose cache the
		// runtime refills every few allocations, deep under the
		// handler (about one handler in three grew to 4 KiB: 620
		// bytes a connection).
		{"one 1 KiB echo", clientFrames(1, 1024, 1), 1, 1024, 300},
		// Four messages at once: the inbox grows, the answers are
		// corked (stdhttp, fasthttp) or batched for the loop (gnet),
		// and the storage for them is allocated under Send. On gnet
		// every handler's stack doubled (2,160-2,250 bytes a
		// connection), on stdhttp 280-610. Some growth remains: any
		// allocation under a handler may take the runtime's deep
		// paths (a span refill that sweeps, a GC assist), more often
		// as a burst makes garbage; the bound catches a doubling of
		// a quarter of the handlers.
		{"4 pipelined 1 KiB echoes", clientFrames(4, 1024, 1), 4, 1024, 512},
		// A message in two fragments: its buffer grows, and a read
		// buffer is taken for the second read (stdhttp 100-200 bytes
		// a connection while that buffer was allocated under the
		// socket's RawConn.Read; 0-80 since).
		{"a 1 KiB message in 2 fragments", clientFrames(1, 1024, 2), 1, 1024, 512},
	}
	last := settledMetric(t, admin, "go_memstats_stack_inuse_bytes")
	t.Logf("goroutine stacks: %.0f KiB with %d connections open", last/1024, conns)
	for _, step := range steps {
		if n, errs := echoAll(o.Conns, step.frames, step.answers, step.size, 10*time.Second); n != conns {
			t.Fatalf("%s: %d of %d connections answered: %v", step.name, n, conns, errs)
		}
		now := settledMetric(t, admin, "go_memstats_stack_inuse_bytes")
		grew := (now - last) / float64(conns)
		last = now
		t.Logf("goroutine stacks: %.0f KiB, %.0f bytes more per connection after %s", now/1024, grew, step.name)
		if grew > step.bound {
			t.Fatalf("stacks grew by %.0f bytes per connection after %s (bound %.0f): 2 KiB stacks doubled", grew, step.name, step.bound)
		}
	}
}

// settledMetric reads a metric once two readings 200 ms apart agree (up
// to 3 s): goroutines that end after an echo (the packing of requests,
// net/http's) move the stacks in use by a few hundred bytes a connection
// for a moment, which would hide or fake a doubling.
func settledMetric(t *testing.T, admin, name string) float64 {
	t.Helper()
	v := serverMetric(t, admin, name)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		w := serverMetric(t, admin, name)
		if w == v {
			return w
		}
		v = w
	}
	return v
}

// serverMetric reads one unlabelled value from a server's /metrics.
func serverMetric(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%s not in %s/metrics", name, admin)
	return 0
}

// clientFrames is what a client writes to send k messages of size bytes
// at once, each in the given number of fragments (masked binary frames).
func clientFrames(k, size, fragments int) []byte {
	var b bytes.Buffer
	for range k {
		for i := range fragments {
			op := ws.OpContinuation
			if i == 0 {
				op = ws.OpBinary
			}
			f := ws.NewFrame(op, i == fragments-1, bytes.Repeat([]byte{'x'}, size/fragments))
			if err := ws.WriteFrame(&b, ws.MaskFrameInPlace(f)); err != nil {
				panic(err)
			}
		}
	}
	return b.Bytes()
}

// echoAll writes frames on each connection in one write, 64 connections
// at a time, and reads the answers: binary messages of size bytes. It
// returns how many connections got all of them.
func echoAll(conns []net.Conn, frames []byte, answers, size int, timeout time.Duration) (int, []error) {
	var (
		mu   sync.Mutex
		ok   int
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan net.Conn)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				err := echoOn(c, frames, answers, size, timeout)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ok++
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	return ok, errs
}

func echoOn(c net.Conn, frames []byte, answers, size int, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(frames); err != nil {
		return err
	}
	for range answers {
		f, err := ws.ReadFrame(c)
		if err != nil {
			return err
		}
		if f.Header.OpCode != ws.OpBinary || !f.Header.Fin || len(f.Payload) != size {
			return fmt.Errorf("answer %v (fin %v) of %d bytes, want one binary frame of %d", f.Header.OpCode, f.Header.Fin, len(f.Payload), size)
		}
	}
	return nil
}
