package conn

import (
	"sync"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/msgbuf"
	"github.com/wsmatrix/wsmatrix/internal/wire"
)

// deflater is a connection's permessage-deflate state. Without context
// takeover it is a few words: compressors and decompressors are borrowed
// from pools per message. With it, it keeps the windows: what it sent
// last (up to wire.MaxStatelessWindow) and what it received last (up to
// 2^ClientWindowBits).
type deflater struct {
	wire.Deflate
	level, threshold int

	mu   sync.Mutex // orders compression with sends: the windows follow the wire
	sent []byte     // with server context takeover: the end of what was sent
	recv []byte     // with client context takeover, owned by the reader: the end of what was received
}

func newDeflater(d wire.Deflate, o *api.Options) *deflater {
	return &deflater{Deflate: d, level: o.CompressionLevel, threshold: o.CompressionThreshold}
}

// deflaterFor returns the deflater of a connection that negotiated d.
// Without context takeover either way a deflater holds no state of its
// own (no window, its lock unused), so connections that negotiated the
// same parameters share one: compression costs an idle connection nothing.
func (s *Server) deflaterFor(d wire.Deflate) *deflater {
	if !d.ServerNoContextTakeover || !d.ClientNoContextTakeover {
		return newDeflater(d, &s.opts)
	}
	if v, ok := s.deflaters.Load(d); ok {
		return v.(*deflater)
	}
	v, _ := s.deflaters.LoadOrStore(d, newDeflater(d, &s.opts))
	return v.(*deflater)
}

// inflate decompresses a whole received message.
func (d *deflater) inflate(payload []byte, limit int64, text bool) ([]byte, error) {
	var dict []byte
	if !d.ClientNoContextTakeover {
		dict = d.recv
	}
	out, err := wire.Inflate(msgbuf.Get(min(4*len(payload)+64, int(limit))), payload, dict, limit, text)
	if err != nil {
		return nil, err
	}
	if !d.ClientNoContextTakeover {
		d.recv = window(d.recv, out, 1<<d.ClientWindowBits)
	}
	return out, nil
}

// compress compresses a message to send; with server context takeover the
// caller holds d.mu until the frame has its place in the queue.
func (d *deflater) compress(p []byte) []byte {
	if d.ServerNoContextTakeover {
		return wire.Compress(nil, p, d.level, d.ServerWindowBits, nil)
	}
	if d.sent == nil { // the first message: an empty window, not none, which Compress reads as no takeover
		d.sent = []byte{}
	}
	out := wire.Compress(nil, p, 0, 15, d.sent)
	d.sent = window(d.sent, p, wire.MaxStatelessWindow)
	return out
}

// window returns the last n bytes of w followed by p, reusing w's storage.
func window(w, p []byte, n int) []byte {
	if len(p) >= n {
		return append(w[:0], p[len(p)-n:]...)
	}
	if keep := n - len(p); len(w) > keep {
		w = append(w[:0], w[len(w)-keep:]...)
	}
	return append(w, p...)
}
