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
// (the race detector's stack guard is larger).
func TestBlockingHandlersKeepTheirFirstStack(t *testing.T) {
	const conns = 2000
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := startServe(t, "--runtime="+rt, "--admin-addr=127.0.0.1:0")
			var admin string
			for deadline := time.Now().Add(5 * time.Second); admin == ""; time.Sleep(10 * time.Millisecond) {
				if m := adminListening.FindStringSubmatch(s.logText()); m != nil {
					admin = m[1]
				} else if time.Now().After(deadline) {
					t.Fatalf("no admin address in the logs:\n%s", s.logText())
				}
			}
			o, err := loadtest.Open(context.Background(), loadtest.OpenConfig{URL: "ws://" + s.addr + "/echo", Conns: conns, Handshake: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if o.Held != conns {
				t.Fatalf("held %d of %d: %v", o.Held, conns, o.Errors)
			}
			before := settledMetric(t, admin, "go_memstats_stack_inuse_bytes")
			if n, errs := o.Echo(64, 10*time.Second); n != conns {
				t.Fatalf("%d of %d echoed: %v", n, conns, errs)
			}
			after := settledMetric(t, admin, "go_memstats_stack_inuse_bytes")
			grew := (after - before) / conns
			t.Logf("goroutine stacks: %.0f -> %.0f KiB, %.0f bytes more per connection after one 64-byte echo", before/1024, after/1024, grew)
			if grew > 1024 {
				t.Fatalf("stacks grew by %.0f bytes per connection on one echo: the blocking handlers' 2 KiB stacks doubled", grew)
			}
			// A 1 KiB message: its allocation, and the answer's frame, come
			// from spans of a larger size class, whose cache the runtime
			// refills every few allocations, deep under the handler (about
			// one handler in three grew to 4 KiB: 620 bytes a connection).
			if n, errs := o.Echo(1024, 10*time.Second); n != conns {
				t.Fatalf("%d of %d echoed 1 KiB: %v", n, conns, errs)
			}
			after1k := settledMetric(t, admin, "go_memstats_stack_inuse_bytes")
			grew = (after1k - after) / conns
			t.Logf("goroutine stacks: %.0f KiB, %.0f bytes more per connection after one 1 KiB echo", after1k/1024, grew)
			if grew > 300 {
				t.Fatalf("stacks grew by %.0f bytes per connection on one 1 KiB echo: some blocking handlers' 2 KiB stacks doubled", grew)
			}
			// Four 1 KiB messages in one write: the inbox grows, the answers
			// are corked (stdhttp, fasthttp) or batched for the loop (gnet),
			// and the storage for them is allocated under Send. On gnet every
			// handler's stack doubled (2,160-2,250 bytes a connection), on
			// stdhttp 280-610. Some growth remains: any allocation under a
			// handler may take the runtime's deep paths (a span refill that
			// sweeps, a GC assist), more often as a burst makes garbage; the
			// bound catches a doubling of a quarter of the handlers.
			if n, errs := pipelinedEcho(o.Conns, 4, 1024, 10*time.Second); n != conns {
				t.Fatalf("%d of %d echoed 4 pipelined messages: %v", n, conns, errs)
			}
			after4 := settledMetric(t, admin, "go_memstats_stack_inuse_bytes")
			grew = (after4 - after1k) / conns
			t.Logf("goroutine stacks: %.0f KiB, %.0f bytes more per connection after 4 pipelined 1 KiB echoes", after4/1024, grew)
			if grew > 512 {
				t.Fatalf("stacks grew by %.0f bytes per connection on 4 pipelined 1 KiB echoes: a quarter of the blocking handlers' 2 KiB stacks doubled", grew)
			}
		})
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

// pipelinedEcho writes k masked binary frames of size bytes in one write
// on each connection and reads k answers; it returns how many connections
// got all of them.
func pipelinedEcho(conns []net.Conn, k, size int, timeout time.Duration) (int, []error) {
	var frame bytes.Buffer
	if err := ws.WriteFrame(&frame, ws.MaskFrameInPlace(ws.NewBinaryFrame(bytes.Repeat([]byte{'x'}, size)))); err != nil {
		return 0, []error{err}
	}
	batch := bytes.Repeat(frame.Bytes(), k)
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
				err := echoBatch(c, batch, k, size, timeout)
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

func echoBatch(c net.Conn, batch []byte, k, size int, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(batch); err != nil {
		return err
	}
	for range k {
		f, err := ws.ReadFrame(c)
		if err != nil {
			return err
		}
		if f.Header.OpCode != ws.OpBinary || len(f.Payload) != size {
			return fmt.Errorf("answer %v of %d bytes, want a binary frame of %d", f.Header.OpCode, len(f.Payload), size)
		}
	}
	return nil
}
