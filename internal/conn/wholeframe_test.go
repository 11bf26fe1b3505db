package conn

import (
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/api"
)

// TestWholeFrameKeepsItsSize: a single-frame message of 100 KiB fed at
// once (as an event loop does with what it has buffered) comes as one
// piece with rest 0. Its end is known (Fin), but appendPiece now takes
// rest 0 for "the message's end is unknown" and doubles: the message is
// stored in 128 KiB; before 494f3ae it took exactly what it needed.
func TestWholeFrameKeepsItsSize(t *testing.T) {
	s := newTestServer(t, quiet())
	f := newSocketFake(1 << 20)
	c := newTestConn(s, f)
	defer c.Gone(errTest)
	got := make(chan api.Message, 1)
	c.OnMessage(func(m api.Message) { got <- m })
	const n = 100 << 10
	c.Feed(clientFrame(ws.OpBinary, make([]byte, n)))
	m := <-got
	t.Logf("len %d cap %d", len(m.Data), cap(m.Data))
	if cap(m.Data) > n+n/8 {
		t.Fatalf("a %d-byte message in one frame holds %d bytes", n, cap(m.Data))
	}
}
