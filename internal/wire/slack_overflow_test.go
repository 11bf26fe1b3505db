package wire

import (
	"math"
	"testing"

	"github.com/gobwas/ws"
)

// TestHugeLimitTakesCompressedMessages: p.limit+p.deflateSlack()
// overflows for a limit near math.MaxInt64 (a caller's "no bound"), and
// every compressed message is then refused with 1009.
func TestHugeLimitTakesCompressedMessages(t *testing.T) {
	payload := Compress(nil, []byte("hello hello hello"), 0, 15, nil)
	var ev Event
	if _, err := NewParser(math.MaxInt64, true).Parse(clientFrame(true, 4, ws.OpText, payload), &ev); err != nil {
		t.Fatalf("a %d-byte compressed message under a limit of MaxInt64: %v", len(payload), err)
	}
}
