package msgbuf

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// TestClassesAreTheAllocators: every class is a size the allocator hands
// out whole, and none lies between two classes, so that a buffer Get makes
// for n bytes is what make takes for n, and goes back under its own class.
func TestClassesAreTheAllocators(t *testing.T) {
	prev := Min - 1
	for _, c := range classes {
		if got := cap(slices.Grow([]byte(nil), prev+1)); got != c {
			t.Errorf("a buffer of %d bytes has room for %d, want the class after %d to be %d", prev+1, got, prev, got)
		}
		if got := cap(slices.Grow([]byte(nil), c)); got != c {
			t.Errorf("a buffer of %d bytes has room for %d: %d is not a size class", c, got, c)
		}
		prev = c
	}
	if classes[0] != Min || classes[len(classes)-1] != Max {
		t.Fatalf("classes go from %d to %d, want %d to %d", classes[0], classes[len(classes)-1], Min, Max)
	}
}

// TestGetHasRoom: whatever was put, Get(n) returns an empty buffer with
// room for n, and what it makes new has the whole room of its class.
func TestGetHasRoom(t *testing.T) {
	for _, size := range []int{Min - 1, 1000, 1100, 1500, Max, Max + 1} {
		Put(make([]byte, 3, size)) // filed under the largest class it holds
	}
	for n := 0; n <= Max+10; n += 37 {
		b := Get(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("Get(%d): len %d, cap %d", n, len(b), cap(b))
		}
		b = b[:n] // the room is there
		for i := range b {
			b[i] = 1
		}
	}
}

// TestPutThenGetReuses: a buffer put back comes out of Get for a size of
// its class, in place of a new one (the race detector's sync.Pool drops
// some of what it is given, hence the tries), and one too small or too
// large for the pool is never filed.
func TestPutThenGetReuses(t *testing.T) {
	reused := false
	for range 100 {
		b := Get(1000) // class 1024
		p := unsafe.SliceData(b)
		Put(b)
		if unsafe.SliceData(Get(1024)) == p {
			reused = true
			break
		}
	}
	if !reused {
		t.Fatal("a buffer put back was never returned by Get for its class")
	}
	big := make([]byte, 0, Max+1)
	small := make([]byte, 0, Min-1)
	for range 100 {
		Put(big)
		Put(small)
		if b := Get(Max); unsafe.SliceData(b) == unsafe.SliceData(big[:1]) {
			t.Fatal("a buffer larger than Max was pooled")
		}
		if b := Get(Min - 1); unsafe.SliceData(b) == unsafe.SliceData(small[:1]) {
			t.Fatal("a buffer smaller than Min was pooled")
		}
	}
}

// TestPutFilesUnderTheClassHeld: a buffer between two classes serves only
// sizes of the lower one (cap is all Get may give out).
func TestPutFilesUnderTheClassHeld(t *testing.T) {
	for range 100 {
		b := make([]byte, 0, 1100) // make rounds the storage up, cap says 1100
		Put(b)
		if got := Get(1100); unsafe.SliceData(got) == unsafe.SliceData(b[:1]) {
			t.Fatal("a buffer of cap 1100 served a Get(1100), whose class is 1152")
		}
	}
}

// TestGetAndPutAllocateNothing: a pooled buffer goes in and out without an
// allocation (a slice in an interface would take one each Put).
func TestGetAndPutAllocateNothing(t *testing.T) {
	if raceEnabled { // its sync.Pool drops some of what it is given: the next Get allocates
		out, err := exec.Command("go", "test", "-race=false", "-count=1", "-run", "^"+t.Name()+"$", "-v", ".").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
			t.Fatalf("without the race detector: %v\n%s", err, out)
		}
		return
	}
	b := Get(1024)
	if n := testing.AllocsPerRun(1000, func() {
		Put(b)
		b = Get(1024)
	}); n != 0 {
		t.Fatalf("%.1f allocations a Put and Get", n)
	}
}
