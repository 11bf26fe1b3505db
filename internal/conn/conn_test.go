package conn

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// fakeTransport records what a connection writes. A write blocks while
// stuck is set, as a socket whose peer stopped reading does.
type fakeTransport struct {
	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
	stuck  chan struct{} // non-nil: writes wait until it is closed
}

func (f *fakeTransport) Write(b []byte) (int, error) {
	f.mu.Lock()
	stuck := f.stuck
	f.mu.Unlock()
	if stuck != nil {
		<-stuck
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(b)
}

func (f *fakeTransport) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeTransport) written() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.out.Bytes()...)
}

// clientFrame is a masked frame as a client sends it.
func clientFrame(op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	mask := ws.NewMask()
	ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: mask})
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	b.Write(p)
	return b.Bytes()
}

func newTestServer(t *testing.T, o api.Options) *Server {
	t.Helper()
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestConn(s *Server, tr Transport) *Conn {
	s.admit()
	r := httptest.NewRequest(http.MethodGet, "/t", nil)
	return s.newConnAdmitted(tr, r, "", netip.MustParseAddrPort("127.0.0.1:1"), nil)
}

// readFrames decodes the server frames in b.
func readFrames(t *testing.T, b []byte) []ws.Frame {
	t.Helper()
	var fs []ws.Frame
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatalf("server wrote a broken frame: %v", err)
		}
		fs = append(fs, f)
	}
	return fs
}

// TestConcurrentReceiversWake: messages that arrive together reach every
// Receive waiting for one; none stays blocked while a message waits.
func TestConcurrentReceiversWake(t *testing.T) {
	s := newTestServer(t, api.Options{PingInterval: api.Disabled})
	const receivers = 4
	for run := range 3000 {
		c := newTestConn(s, &fakeTransport{})
		got := make(chan string, receivers)
		for range receivers {
			go func() {
				m, err := c.Receive()
				if err == nil {
					got <- m.String()
				}
			}()
		}
		var in []byte
		for i := range receivers {
			in = append(in, clientFrame(ws.OpText, []byte{'a' + byte(i)})...)
		}
		c.Feed(in)
		for i := range receivers {
			select {
			case <-got:
			case <-time.After(2 * time.Second):
				t.Fatalf("run %d: receiver %d of %d still waits while a message is in the inbox", run, i+1, receivers)
			}
		}
		c.Gone(errTest)
	}
}

var errTest = &api.CloseError{Code: api.StatusAbnormalClosure, Reason: "test over"}

// TestClockNeverBlocksOnOneConn: a connection whose socket takes nothing
// (its writes block) must not delay the pings of the others.
func TestClockNeverBlocksOnOneConn(t *testing.T) {
	s := newTestServer(t, api.Options{PingInterval: 50 * time.Millisecond, PongTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	stuckTr := &fakeTransport{stuck: make(chan struct{})}
	defer close(stuckTr.stuck)
	stuck := newTestConn(s, stuckTr)
	defer stuck.Gone(errTest)
	okTr := &fakeTransport{}
	ok := newTestConn(s, okTr)
	defer ok.Gone(errTest)
	deadline := time.Now().Add(3 * time.Second)
	answered := 0
	for time.Now().Before(deadline) {
		pings := 0
		for _, f := range readFrames(t, okTr.written()) {
			if f.Header.OpCode == ws.OpPing {
				pings++
			}
		}
		if pings > answered {
			answered = pings
			ok.Feed(clientFrame(ws.OpPong, nil))
		}
		if pings >= 3 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the keepalive clock stalled on a connection whose writes block: fewer than 3 pings in 3 s at a 50 ms interval (got %d; %q)", answered, okTr.written())
}
