package runtime_test

import (
	"context"
	goruntime "runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/runtime"
)

// keep holds what the bursts below keep alive, as connections would.
var keep [][]byte

// burst allocates n bytes in 8 KiB pieces, keeping one piece in keepEvery
// (a connection's state among its handshake's garbage). A piece is a span
// of its own: the garbage's pages are free once collected.
func burst(n, keepEvery int) {
	for i := 0; i < n/8192; i++ {
		b := make([]byte, 8192)
		if i%keepEvery == 0 {
			keep = append(keep, b)
		}
	}
}

// freeKept is the heap's free memory that the process keeps: mapped, not
// returned.
func freeKept() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// watch runs ReturnMemory until the test ends, counting its returns.
// Once every loop of the test ended, no goroutine is left.
func watch(t *testing.T, quiet time.Duration) (returns, bytes *atomic.Uint64) {
	if !watched[t] {
		watched[t] = true
		t.Cleanup(func() { // the cleanups run last first: this one after every loop's
			delete(watched, t)
			goleak.VerifyNone(t)
		})
	}
	t.Cleanup(func() { keep = nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	returns, bytes = new(atomic.Uint64), new(atomic.Uint64)
	go func() {
		defer close(done)
		runtime.ReturnMemory(ctx, quiet, func(n uint64) {
			returns.Add(1)
			bytes.Add(n)
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return returns, bytes
}

// watched are the tests that called watch.
var watched = map[*testing.T]bool{}

func TestReturnMemoryAfterABurst(t *testing.T) {
	returns, bytes := watch(t, 100*time.Millisecond)
	burst(256<<20, 4) // 64 MiB kept among 192 MiB of garbage
	deadline := time.Now().Add(10 * time.Second)
	for returns.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if returns.Load() == 0 {
		t.Fatal("nothing was returned in 10 s after a burst")
	}
	free := freeKept()
	t.Logf("returned %d times, %d MiB; %d KiB free kept after", returns.Load(), bytes.Load()>>20, free>>10)
	if bytes.Load() < 16<<20 || free > 4<<20 {
		t.Fatalf("returned %d bytes, %d free kept: a burst that left 192 MiB of garbage should give most of it back", bytes.Load(), free)
	}
	// Once quiet, nothing more: the next return needs another burst.
	n := returns.Load()
	time.Sleep(500 * time.Millisecond)
	if m := returns.Load(); m != n {
		t.Fatalf("%d more returns while the process stayed quiet", m-n)
	}
}

func TestReturnMemoryWaitsWhileBusy(t *testing.T) {
	returns, _ := watch(t, 100*time.Millisecond)
	burst(64<<20, 4) // live heap to measure the garbage against
	keepLen := len(keep)
	// Allocating about 200 MB/s, which a return would only make the
	// runtime take back: none while it lasts.
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		burst(4<<20, 1<<30)
		time.Sleep(20 * time.Millisecond)
		keep = keep[:keepLen]
	}
	if n := returns.Load(); n != 0 {
		t.Fatalf("%d returns while the process allocated about 200 MB/s", n)
	}
}

// sink takes what is allocated only to be garbage.
var sink []byte

// A process with a 16 MiB live heap that allocates steadily, 256 KiB
// every 50 ms (5 MiB/s: GOGC would collect about once per 3 s), is never
// quiet for 100 ms: no return. (A review found one every ~1.7 s when
// quiet meant allocating under a sixteenth of the garbage piled up, which
// any steady rate reaches.)
func TestReturnMemoryIgnoresASteadyRate(t *testing.T) {
	live := make([][]byte, 0, 16<<20/8192)
	for range cap(live) {
		live = append(live, make([]byte, 8192))
	}
	goruntime.GC()
	var returns atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.ReturnMemory(ctx, 100*time.Millisecond, func(uint64) { returns.Add(1) })
	}()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	gc0, alloc0 := ms.NumGC, ms.TotalAlloc
	end := time.Now().Add(4 * time.Second)
	for time.Now().Before(end) { // 256 KiB per 50 ms
		for range 32 {
			sink = make([]byte, 8192)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	goruntime.ReadMemStats(&ms)
	allocated := ms.TotalAlloc - alloc0
	gcs := ms.NumGC - gc0
	goruntime.KeepAlive(live)
	byGOGC := allocated / (16 << 20) // cycles GOGC=100 would have run on its own
	t.Logf("allocated %d MiB in 4 s against a 16 MiB live heap: %d returns, %d collections in all (GOGC alone: ~%d)", allocated>>20, returns.Load(), gcs, byGOGC)
	if returns.Load() != 0 {
		t.Fatalf("%d returns (full GC + scavenge each) on a steadily busy process; GOGC alone would collect ~%d times", returns.Load(), byGOGC)
	}
}

// TestReturnMemoryTinyQuiet: quiet/4 rounds to 0 and time.NewTicker
// panics, killing the process (wsmatrix serve --return-memory=3ns).
func TestReturnMemoryTinyQuiet(t *testing.T) {
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("ReturnMemory(3ns) panicked: %v", v)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	runtime.ReturnMemory(ctx, 3*time.Nanosecond, nil)
}

// heldHeap is the heap memory the process holds: objects, dead or alive,
// free pages not returned, and the room among objects.
func heldHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
}

// Serve gives back what a burst left, as wsmatrix serve does.
func TestServeReturnsMemory(t *testing.T) {
	t.Cleanup(func() { keep = nil })
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- runtime.Serve(ctx, fake{"memory"}, "127.0.0.1:0") }()
	burst(256<<20, 4) // 64 MiB kept among 192 MiB of garbage
	const most = 64<<20 + 16<<20
	held := heldHeap()
	for deadline := time.Now().Add(10 * time.Second); held > most && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		held = heldHeap()
	}
	cancel()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)
	if held > most {
		t.Fatalf("the heap holds %d MiB 10 s after a burst that kept 64 MiB", held>>20)
	}
}

// Two loops (two Serve calls, say) return a burst's memory once.
func TestTwoLoopsReturnOnce(t *testing.T) {
	a, _ := watch(t, 100*time.Millisecond)
	b, _ := watch(t, 100*time.Millisecond)
	burst(256<<20, 4) // 64 MiB kept among 192 MiB of garbage
	deadline := time.Now().Add(10 * time.Second)
	for a.Load()+b.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // time for a second return, if any
	if n := a.Load() + b.Load(); n != 1 {
		t.Fatalf("%d returns for one burst by two loops, want 1", n)
	}
}
