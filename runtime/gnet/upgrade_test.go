package gnet

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
)

// A client may send frames as soon as it reads the 101: frames that
// arrive before the upgrading goroutine hands the connection to the loop
// are kept (up to the connection's own budget), not cut by the bound on
// what may come before the answer. The connection was closed when a 64 KiB
// frame came in that window (kit bounds/pipelining_peer_that_reads_is_never_cut
// failed with EOF under CPU contention).
func TestFramesRightAfterThe101AreKept(t *testing.T) {
	testHookBeforeRun = func() { time.Sleep(100 * time.Millisecond) }
	t.Cleanup(func() { testHookBeforeRun = nil }) // after start's Shutdown: the upgrade goroutines have ended
	addr := start(t, api.Options{}, 1, func(r *api.Router) { r.Handle("/echo", handlers.Echo) })
	nc, br := dialUpgrade(t, addr, "/echo")
	defer nc.Close()
	const n, size = 4, 64 << 10
	var frames bytes.Buffer
	for range n {
		ws.WriteHeader(&frames, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: size, Masked: true})
		frames.Write(make([]byte, size)) // zero mask: the payload as is
	}
	go func() {
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		nc.Write(frames.Bytes())
	}()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		p, op, err := wsutil.ReadServerData(struct {
			io.Reader
			io.Writer
		}{br, nc})
		if err != nil || op != ws.OpBinary || len(p) != size {
			t.Fatalf("echo %d: %v, %d bytes, %v", i, op, len(p), err)
		}
	}
}
