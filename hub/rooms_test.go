package hub

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// ctxConn is a connection the hub sees only through its context.
type ctxConn struct {
	api.Conn
	ctx context.Context
}

func (c ctxConn) Context() context.Context { return c.ctx }

// TestManyRoomsCostLinearTime: a member that joins many rooms, and then
// leaves the hub, takes time in proportion to its rooms, under the hub's
// lock that every other operation waits for; joining searched the
// member's rooms and detaching deleted them one by one from the front
// (100,000 rooms: a 2.5 s stall of every other member). The bound is a
// ratio with a wide margin, between linear's 32 times and quadratic's
// 1,000: one run under -race on a busy machine measured 154 times.
func TestManyRoomsCostLinearTime(t *testing.T) {
	h := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer h.Close()
	cost := func(n int) time.Duration {
		ctx, cancel := context.WithCancel(context.Background())
		m := h.Attach(ctxConn{ctx: ctx})
		rooms := make([]string, n)
		for i := range rooms {
			rooms[i] = "r" + strconv.Itoa(i)
		}
		start := time.Now()
		for _, r := range rooms {
			m.Join(r)
		}
		cancel() // the connection ends: the member leaves
		for h.Member(m.ID()) != nil {
			time.Sleep(time.Millisecond)
		}
		if len(h.LocalRooms()) != 0 {
			t.Fatalf("%d rooms left", len(h.LocalRooms()))
		}
		return time.Since(start)
	}
	least := func(n int) time.Duration { // the least of three: a collection or a busy machine only adds
		return min(cost(n), cost(n), cost(n))
	}
	small, large := least(2_000), least(64_000)
	t.Logf("2,000 rooms: %v, 64,000 rooms: %v", small, large)
	if large > 300*small+200*time.Millisecond { // linear: 32 times; quadratic: about 1,000 (1,060 measured before)
		t.Fatalf("64,000 rooms took %v, 2,000 took %v: not in proportion", large, small)
	}
}
