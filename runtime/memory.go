package runtime

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// ReturnMemory gives the memory a burst of activity left free back to the
// operating system once the process is quiet again, and runs until ctx is
// done. A burst of handshakes or of messages leaves garbage behind; Go
// collects it, but keeps the pages it took for the next burst, up to
// about twice the live heap (GOGC), so a server that accepted 10,000
// connections holds about 1.6 times what they need until the next
// collection. ReturnMemory watches the process's allocation: once it has
// allocated, for quiet, less than a sixteenth of what could be returned, it
// collects and returns the free pages (debug.FreeOSMemory), and then waits
// for another burst: "quiet" is also under a sixteenth of the most it
// allocated in one such period since the last return, so a process that
// allocates at a steady rate, however low, is never quiet. returned, when
// not nil, is told how many bytes went back after each return.
//
// It is process-wide: call it once, beside the runtimes (Serve runs it,
// and wsmatrix serve with --return-memory, default 1 s). Each return costs one full
// garbage collection of the process's live heap. The rule bounds how
// often that happens: only after garbage of at least 1 MiB and a quarter
// of the live heap, and only once a burst ended, never under a steady
// allocation rate: at most four times as often as GOGC's own collections
// (bursts spaced a little more than quiet apart, each leaving a quarter of
// the live heap as garbage). A pause in the traffic longer than quiet is
// quiet: with the default, steady traffic did not trigger a return, with
// 10 ms it did, 8 times in 9 s; quiet ≤ 0 means one second, the shortest
// is 100 ms. Whatever allocates counts, the process's own metrics scrapes
// included (about 110 KB each for wsmatrix serve's /metrics).
func ReturnMemory(ctx context.Context, quiet time.Duration, returned func(bytes uint64)) {
	if quiet <= 0 {
		quiet = time.Second
	}
	quiet = max(quiet, minQuiet)
	const steps = 4 // samples per quiet period
	t := time.NewTicker(quiet / steps)
	defer t.Stop()
	samples := memorySamples()
	var allocs [steps + 1]uint64 // the allocation counter at the last steps+1 ticks
	n := 0
	var peak uint64 // the most allocated in one quiet period since the last return: the burst
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m := readMemory(samples)
		copy(allocs[:], allocs[1:])
		allocs[steps] = m.allocs
		if n++; n <= steps {
			continue // not a whole quiet period seen yet
		}
		allocated := m.allocs - allocs[0]
		peak = max(peak, allocated)
		if allocated > peak/16 || !m.worthReturning(allocated) {
			continue
		}
		if !returning.TryLock() {
			continue // another loop returns now: what is left is looked at again
		}
		debug.FreeOSMemory()
		returning.Unlock()
		after := readMemory(samples)
		if returned != nil && m.retained() > after.retained() {
			returned(m.retained() - after.retained())
		}
		n, peak = 0, 0 // the next return needs a burst, and a quiet period, of its own
	}
}

// returning is held while one of the process's ReturnMemory loops
// returns memory: two at once would collect twice for one burst.
var returning sync.Mutex

// minQuiet is the shortest quiet period ReturnMemory takes: shorter ones
// find pauses in steady traffic.
const minQuiet = 100 * time.Millisecond

// minReturn is the least garbage worth a collection to return.
const minReturn = 1 << 20

// memory is what ReturnMemory reads of the heap.
type memory struct {
	allocs  uint64 // bytes allocated since the start
	live    uint64 // the live heap at the last collection
	objects uint64 // heap objects, live or dead (not swept yet)
	free    uint64 // free heap pages not returned
	unused  uint64 // the rest of the pages that hold objects
}

// retained is the heap memory the process holds.
func (m memory) retained() uint64 { return m.objects + m.free + m.unused }

// worthReturning says whether the pages that a collection would free are
// worth returning, given what the process allocated during the last quiet
// period.
func (m memory) worthReturning(allocated uint64) bool {
	// The dead objects and the free pages; the unused room among live
	// objects stays after a collection.
	if m.objects+m.free <= m.live {
		return false
	}
	spare := m.objects + m.free - m.live
	return spare >= minReturn && spare >= m.live/4 && allocated <= spare/16
}

// memorySamples are the metrics readMemory reads, in its order.
func memorySamples() []metrics.Sample {
	return []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
}

func readMemory(s []metrics.Sample) memory {
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return memory{allocs: v(0), live: v(1), objects: v(2), unused: v(3), free: v(4)}
}
