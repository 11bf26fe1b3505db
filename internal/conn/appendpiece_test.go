package conn

import "testing"

// TestManySmallFramesGrowTheMessageByDoubling: a message sent as many
// small frames grows its buffer by doubling, so that receiving it costs
// allocations and copies in proportion to its length. Each frame's end
// (rest 0) was taken for the message's: the buffer grew to exactly what
// was needed, once a frame, and a message of n frames cost n copies of
// itself (160,000 one-byte frames: 5 s of CPU).
func TestManySmallFramesGrowTheMessageByDoubling(t *testing.T) {
	var msg []byte
	grown, copied := 0, 0
	piece := []byte{'x'}
	for range 100_000 {
		n, c := len(msg), cap(msg)
		msg = appendPiece(msg, piece, 0, false)
		if cap(msg) != c {
			grown++
			copied += n
		}
	}
	if len(msg) != 100_000 {
		t.Fatalf("%d bytes, want 100,000", len(msg))
	}
	if grown > 40 || copied > 4*len(msg) {
		t.Fatalf("100,000 one-byte frames: the buffer grew %d times, copying %d bytes", grown, copied)
	}
	// A long frame still goes straight to its end once that is near.
	msg = appendPiece(make([]byte, 0, 600), make([]byte, 1000), 400, false)
	if cap(msg) < 1400 || cap(msg) > 1408 { // 1408: the allocator's size class
		t.Fatalf("a frame with 400 bytes to come: cap %d, want 1400", cap(msg))
	}
}
