package conn

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loopFake is gnet's transport as the conn sees it: TryWrite takes all,
// the loop holds it (Backlog), the peer reads it at its own pace.
type loopFake struct {
	held   atomic.Int64
	closed atomic.Bool
}

func (f *loopFake) TryWrite(a, b []byte) (int, error) {
	f.held.Add(int64(len(a) + len(b)))
	return len(a) + len(b), nil
}
func (f *loopFake) Write(b []byte) (int, error) { return f.TryWrite(b, nil) }
func (f *loopFake) Close() error                { f.closed.Store(true); return nil }
func (f *loopFake) Backlog() int                { return int(f.held.Load()) }
func (f *loopFake) RefreshBacklog() int         { return f.Backlog() }
func (f *loopFake) WaitBacklog(n int, deadline time.Time, done <-chan struct{}) bool {
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if f.Backlog() <= n {
			return true
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return false
		}
		select {
		case <-time.After(delay):
		case <-done:
			return true
		}
	}
}
func (f *loopFake) read(n int64) {
	for {
		h := f.held.Load()
		if f.held.CompareAndSwap(h, max(h-n, 0)) {
			return
		}
	}
}

// Two goroutines send 64 KiB messages to a gnet-like transport whose peer
// reads 64 KiB every 20 ms (3.2 MB/s, steadily). Each Send waits well under
// notReadingAfter, yet the peer is taken for one that reads nothing.
func TestTwoSendersToAPeerReadingBehind(t *testing.T) {
	o := quiet()
	o.SendQueueBytes = 128 << 10
	o.WriteTimeout = 10 * time.Second
	s := newTestServer(t, o)
	f := &loopFake{}
	c := newTestConn(s, f)
	defer c.Gone(errTest)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var longest atomic.Int64
	msg := make([]byte, 64<<10)
	// until runs step on a goroutine of its own until stop, or until
	// step reports false.
	until := func(step func() bool) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !step() {
					return
				}
			}
		})
	}
	for range 2 { // two senders
		until(func() bool {
			t0 := time.Now()
			if c.SendBinary(msg) != nil {
				return false
			}
			if d := int64(time.Since(t0)); d > longest.Load() {
				longest.Store(d)
			}
			return true
		})
	}
	until(func() bool { // the peer reads, behind
		time.Sleep(20 * time.Millisecond)
		f.read(64 << 10)
		return true
	})
	start := time.Now()
	var flagged time.Duration
	for time.Since(start) < 4*time.Second {
		if c.peerNotReading() {
			flagged = time.Since(start)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		f.read(1 << 40)
		select {
		case <-done:
			waiting = false
		case <-time.After(time.Millisecond):
		}
	}
	if flagged > 0 {
		t.Fatalf("a peer reading 64 KiB every 20 ms is taken for one that reads nothing after %v; the longest Send waited %v", flagged, time.Duration(longest.Load()))
	}
}
