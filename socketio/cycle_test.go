package socketio

import (
	"os"
	"os/exec"
	"testing"
)

// encodeArgs with a cyclic map: json.Marshal reports an error for cycles
// (UnsupportedValueError), but hasBytes recurses first, without bound.
func TestEmitCycleIsAnError(t *testing.T) {
	if os.Getenv("REVIEW_CYCLE") == "1" {
		m := map[string]any{}
		m["self"] = m
		_, _, err := encodeArgs(nil, []any{m})
		println("encodeArgs returned:", err.Error())
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmitCycleIsAnError$")
	cmd.Env = append(os.Environ(), "REVIEW_CYCLE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		n := len(out)
		if n > 300 {
			out = out[:300]
		}
		t.Fatalf("the process died (%v): %s", err, out)
	}
	t.Logf("%s", out)
}
