package api_test

import (
	"sync"
	"testing"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/hook"
)

// TestPreparedFramesBuiltOnce: many concurrent sends of one prepared
// message build each way of framing it once.
func TestPreparedFramesBuiltOnce(t *testing.T) {
	pm := api.NewPreparedMessage(api.TextMessage("hello"))
	var mu sync.Mutex
	builds := map[uint32]int{}
	build := func(typ uint8, data []byte, key uint32) []byte {
		mu.Lock()
		builds[key]++
		mu.Unlock()
		return append([]byte{byte(key)}, data...)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			key := uint32(i % 3)
			if got := hook.PreparedFrame(pm, key, build); string(got) != string(append([]byte{byte(key)}, "hello"...)) {
				t.Errorf("key %d: %q", key, got)
			}
		})
	}
	wg.Wait()
	for key, n := range builds {
		if n != 1 {
			t.Fatalf("key %d built %d times", key, n)
		}
	}
	if len(builds) != 3 {
		t.Fatalf("%d kinds built, want 3", len(builds))
	}
}
