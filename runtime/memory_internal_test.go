package runtime

import "testing"

func TestWorthReturning(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		live, dead, free, allocated uint64
		want                        bool
	}{
		{live: 10 * MiB, dead: 5 * MiB, free: 2 * MiB, allocated: 0, want: true},
		{live: 10 * MiB, free: 7 * MiB, allocated: 7 * MiB / 16, want: true},
		{live: 10 * MiB, dead: 7 * MiB, allocated: 7*MiB/16 + 1, want: false},    // still allocating
		{live: 2 * MiB, dead: MiB / 2, free: MiB / 4, allocated: 0, want: false}, // under 1 MiB to give back
		{live: 100 * MiB, free: 24 * MiB, allocated: 0, want: false},             // under a quarter of the live heap
		{live: 100 * MiB, free: 25 * MiB, allocated: 0, want: true},
		{live: 10 * MiB, allocated: 0, want: false},
	} {
		// Unused room among live objects is never counted: a collection
		// cannot give it back.
		m := memory{live: c.live, objects: c.live + c.dead, free: c.free, unused: 50 * MiB}
		if got := m.worthReturning(c.allocated); got != c.want {
			t.Errorf("live %d MiB, dead %d MiB, free %d MiB, allocated %d: worth returning %v, want %v", c.live/MiB, c.dead/MiB, c.free/MiB, c.allocated, got, c.want)
		}
	}
}
