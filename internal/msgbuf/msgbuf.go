// Package msgbuf keeps the storage of received messages that handlers
// give back (api.Message.Release) for the messages received next, on any
// connection: a handler that releases what it is done with spares the
// server an allocation per message, and the heap the garbage that a burst
// of messages leaves behind it until the next collection.
//
// Buffers are filed by the allocator's size classes, so that a buffer made
// here for n bytes is exactly what make would have taken for n (no memory
// is wasted on a message that is kept) and comes back to the class it was
// taken from. Like any sync.Pool, what is pooled goes at the second
// garbage collection that finds it unused.
package msgbuf

import (
	"slices"
	"sync"
	"unsafe"
)

// classes are the runtime's size classes from Min (runtime/sizeclasses.go;
// TestClassesAreTheAllocators checks them), then whole 8 KiB pages up to
// Max. A different table would only make the pool miss more often: Get
// returns no more than a class holds and Put files a buffer under the
// largest class it holds.
var classes = [...]int{
	64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896,
	1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200,
	3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
	10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480,
	21760, 24576, 27264, 28672, 32768, 40960, 49152, 57344, 65536,
}

const (
	// Min is the smallest buffer pooled: smaller ones cost the allocator
	// less than the pool.
	Min = 64
	// Max is the largest buffer pooled, a frame's first allocation at
	// most: a larger message is rare, and would hold a lot in the pool.
	Max = 64 << 10
)

// pools holds, per class, pointers to the first byte of buffers that hold
// at least the class's size: a pointer goes into an interface without an
// allocation, where a slice would take one each Put.
var pools [len(classes)]sync.Pool

// Get returns an empty buffer with room for n bytes: a released one when
// its class has one, or a new one with all the room of its size class.
func Get(n int) []byte {
	if n < Min || n > Max {
		return make([]byte, 0, n)
	}
	i, _ := slices.BinarySearch(classes[:], n) // the first class >= n
	if p, _ := pools[i].Get().(unsafe.Pointer); p != nil {
		return unsafe.Slice((*byte)(p), classes[i])[:0]
	}
	return slices.Grow([]byte(nil), n) // growslice rounds up to the size class
}

// Put files b's storage for Get. The caller gives it up: nothing may use b
// (or any slice of its storage) afterwards.
func Put(b []byte) {
	c := cap(b)
	if c < Min || c > Max {
		return
	}
	i, found := slices.BinarySearch(classes[:], c)
	if !found {
		i-- // the largest class that c holds
	}
	pools[i].Put(unsafe.Pointer(unsafe.SliceData(b)))
}
