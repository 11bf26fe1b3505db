package conn

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test ends what it starts: a handler, helper or flusher left
// running races with the next test's hooks and hides leaks.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
