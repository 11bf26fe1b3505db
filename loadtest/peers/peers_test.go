package peers_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

// readLimit is wsmatrix's default read limit, which every peer is
// configured to.
const readLimit = peers.ReadLimit

// wsPeers are the WebSocket servers, which must do the work wsmatrix does
// for every message. rawtcp is the ceiling of the echo comparison, not a
// WebSocket server: it only echoes, and is only checked for that.
var wsPeers = []string{"gorilla", "coder", "gws", "nbio", "fasthttpws", "melody"}

// invalidUTF8Code is the close code a peer sends for a text message that is
// not UTF-8: RFC 6455 says 1007; nbio checks (with utf8.Valid, as wsmatrix)
// but closes with 1002.
var invalidUTF8Code = map[string]ws.StatusCode{"nbio": ws.StatusProtocolError}

// TestPeersDoTheWork builds every peer and checks that it does what
// wsmatrix does for a client: echo, a pong with the ping's payload, close
// 1007 for invalid UTF-8, the 16 MiB read limit (a message of exactly
// 16 MiB is taken, one byte more closes with 1009) and the close
// handshake. A peer that skipped one would be measured doing less.
func TestPeersDoTheWork(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./gorilla", "./coder", "./gws", "./nbio", "./fasthttpws", "./rawtcp", "./nethttp", "./melody")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	checks := []struct {
		name string
		fn   func(t *testing.T, peer, url string)
	}{
		{"echo", checkEcho},
		{"largest message", checkLargest},
		{"pong payload", checkPong},
		{"invalid UTF-8", checkInvalidUTF8},
		{"past the read limit", checkTooBig},
		{"close handshake", checkCloseHandshake},
	}
	for _, peer := range wsPeers {
		t.Run(peer, func(t *testing.T) {
			url := "ws://" + start(t, filepath.Join(dir, peer)) + "/echo"
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) { c.fn(t, peer, url) })
			}
		})
	}
	// The hubs of the broadcast scenario relay to every connection.
	for _, peer := range []string{"melody", "gws"} {
		t.Run(peer+"/broadcast", func(t *testing.T) {
			checkBroadcast(t, "ws://"+start(t, filepath.Join(dir, peer))+"/broadcast")
		})
	}
	// rawtcp is the echo ceiling, not a WebSocket server: it only echoes.
	t.Run("rawtcp/echo", func(t *testing.T) {
		checkEcho(t, "rawtcp", "ws://"+start(t, filepath.Join(dir, "rawtcp"))+"/echo")
	})
	// nethttp is the baseline of the http scenario: GET /healthz.
	t.Run("nethttp/healthz", func(t *testing.T) {
		resp, err := http.Get("http://" + start(t, filepath.Join(dir, "nethttp")) + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok\n" {
			t.Fatalf("GET /healthz: %d %q", resp.StatusCode, b)
		}
	})
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// start starts a peer on a free loopback port and returns its address; the
// process is killed when the test ends.
func start(t *testing.T, bin string) string {
	t.Helper()
	return startArgs(t, bin)
}

// startArgs is start with more flags.
func startArgs(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--addr=127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	select {
	case a := <-addr:
		waitListening(t, a)
		return a
	case <-done:
		t.Fatalf("%s exited: %s", bin, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not log its address", bin)
	}
	return ""
}

// waitListening waits until addr accepts: nbio logs its address just after
// starting its pollers.
func waitListening(t *testing.T, addr string) {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// conn is a client connection that reads server frames with a deadline.
type conn struct {
	t  *testing.T
	c  net.Conn
	br io.Reader
}

func dial(t *testing.T, url string) *conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := io.Reader(c)
	if br != nil { // bytes the server sent right after its 101
		r = io.MultiReader(br, c)
	}
	return &conn{t: t, c: c, br: r}
}

// send writes one masked frame.
func (c *conn) send(o ws.OpCode, p []byte) {
	c.t.Helper()
	if err := ws.WriteFrame(c.c, ws.MaskFrame(ws.NewFrame(o, true, p))); err != nil {
		f, rerr := readMessage(c.br)
		c.t.Fatalf("write %s: %v; the server sent %s (%v)", op(o), err, describe(f), rerr)
	}
}

// next reads the next frame the server sends, skipping those of the
// opcodes in skip. A fragmented message comes back whole, as one frame of
// its first opcode.
func (c *conn) next(skip ...ws.OpCode) ws.Frame {
	c.t.Helper()
	f, err := readMessage(c.br, skip...)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// readMessage reads the next message or control frame from r, skipping
// the control frames of the opcodes in skip.
func readMessage(r io.Reader, skip ...ws.OpCode) (ws.Frame, error) {
	var msg ws.Frame
	for {
		f, err := ws.ReadFrame(r)
		if err != nil {
			return f, err
		}
		switch {
		case f.Header.Masked:
			return f, fmt.Errorf("server frame %s is masked", op(f.Header.OpCode))
		case slices.Contains(skip, f.Header.OpCode):
			continue
		case f.Header.OpCode.IsControl() && msg.Header.OpCode == 0:
			return f, nil
		case f.Header.OpCode.IsControl():
			return f, fmt.Errorf("%s frame in the middle of a message", op(f.Header.OpCode))
		case msg.Header.OpCode == 0 && f.Header.OpCode == ws.OpContinuation:
			return f, errors.New("continuation frame without a message")
		case msg.Header.OpCode == 0:
			msg = f
			msg.Payload = slices.Clone(f.Payload)
		case f.Header.OpCode != ws.OpContinuation:
			return f, fmt.Errorf("%s frame in the middle of a message", op(f.Header.OpCode))
		default:
			msg.Payload = append(msg.Payload, f.Payload...)
		}
		if f.Header.Fin {
			return msg, nil
		}
	}
}

// wantClose reads until a close frame and checks its code.
func (c *conn) wantClose(code ws.StatusCode) {
	c.t.Helper()
	f := c.next(ws.OpPing, ws.OpPong)
	if f.Header.OpCode != ws.OpClose {
		c.t.Fatalf("got %s, want close %d", describe(f), code)
	}
	got, reason := ws.ParseCloseFrameData(f.Payload)
	if got != code {
		c.t.Fatalf("close %d %q, want %d", got, reason, code)
	}
}

// op names an opcode in failure messages.
func op(o ws.OpCode) string {
	names := map[ws.OpCode]string{ws.OpContinuation: "continuation", ws.OpText: "text", ws.OpBinary: "binary",
		ws.OpClose: "close", ws.OpPing: "ping", ws.OpPong: "pong"}
	if n, ok := names[o]; ok {
		return n
	}
	return fmt.Sprintf("opcode %d", o)
}

// describe says what a frame is, for failure messages.
func describe(f ws.Frame) string {
	if f.Header.OpCode == ws.OpClose {
		code, reason := ws.ParseCloseFrameData(f.Payload)
		return fmt.Sprintf("close %d %q", code, reason)
	}
	return fmt.Sprintf("%s of %d bytes", op(f.Header.OpCode), len(f.Payload))
}

func checkEcho(t *testing.T, peer, url string) {
	c := dial(t, url)
	for _, m := range []struct {
		op ws.OpCode
		p  []byte
	}{
		{ws.OpText, []byte("héllo wsmatrix")},
		{ws.OpBinary, []byte{0, 1, 2, 0xff}},
		{ws.OpText, bytes.Repeat([]byte("é"), 20000)}, // within rawtcp's 64 KiB frames
	} {
		c.send(m.op, m.p)
		f := c.next(ws.OpPing, ws.OpPong)
		if f.Header.OpCode != m.op || !bytes.Equal(f.Payload, m.p) {
			t.Fatalf("echo of %s of %d bytes: got %s", op(m.op), len(m.p), describe(f))
		}
	}
}

// checkLargest: a message of exactly the read limit is taken, so the limit
// is 16 MiB and not less.
func checkLargest(t *testing.T, peer, url string) {
	c := dial(t, url)
	p := bytes.Repeat([]byte{7}, readLimit)
	c.send(ws.OpBinary, p)
	f := c.next(ws.OpPing, ws.OpPong)
	if f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, p) {
		t.Fatalf("echo of %d bytes: got %s", len(p), describe(f))
	}
}

func checkPong(t *testing.T, peer, url string) {
	c := dial(t, url)
	c.send(ws.OpPing, []byte("abc"))
	f := c.next()
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "abc" {
		t.Fatalf("got %s %q, want a pong %q", op(f.Header.OpCode), f.Payload, "abc")
	}
}

func checkInvalidUTF8(t *testing.T, peer, url string) {
	want, ok := invalidUTF8Code[peer]
	if !ok {
		want = ws.StatusInvalidFramePayloadData
	}
	c := dial(t, url)
	c.send(ws.OpText, []byte("ok \xff\xfe not UTF-8"))
	c.wantClose(want)
}

// checkTooBig sends the header of a message one byte past the limit: a
// server that checks the declared length closes at once. If no close comes
// within 300 ms, the whole payload follows, for a server that counts what
// it reads (coder): it reads every byte before it closes, so no unread
// byte turns its close into a reset that could lose the close frame.
func checkTooBig(t *testing.T, peer, url string) {
	c := dial(t, url)
	const size = readLimit + 1
	mask := ws.NewMask()
	if err := ws.WriteHeader(c.c, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: size, Masked: true, Mask: mask}); err != nil {
		t.Fatal(err)
	}
	frames := make(chan ws.Frame, 1)
	errs := make(chan error, 1)
	go func() {
		f, err := readMessage(c.br, ws.OpPing, ws.OpPong)
		if err == nil && f.Header.OpCode != ws.OpClose {
			err = fmt.Errorf("the server echoed it: %s", describe(f))
		}
		if err != nil {
			errs <- err
			return
		}
		frames <- f
	}()
	var f ws.Frame
	select {
	case f = <-frames:
	case err := <-errs:
		t.Fatalf("read: %v, want close 1009", err)
	case <-time.After(300 * time.Millisecond):
		p := make([]byte, size)
		ws.Cipher(p, mask, 0)
		if _, err := c.c.Write(p); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("write of the payload: %v", err)
		}
		select {
		case f = <-frames:
		case err := <-errs:
			t.Fatalf("read: %v, want close 1009", err)
		}
	}
	if code, reason := ws.ParseCloseFrameData(f.Payload); code != ws.StatusMessageTooBig {
		t.Fatalf("close %d %q, want 1009", code, reason)
	}
}

// checkCloseHandshake: a close from the client is answered with a close,
// and then the server ends the TCP connection.
func checkCloseHandshake(t *testing.T, peer, url string) {
	c := dial(t, url)
	c.send(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))
	c.wantClose(ws.StatusNormalClosure)
	if _, err := c.br.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the close handshake: %v, want the server to end the connection", err)
	}
}

// TestPeersCompress: the peers that compress negotiate permessage-deflate
// with --compression and echo a compressed message compressed, as the
// benchmark of compressed echo needs.
func TestPeersCompress(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./gorilla", "./coder", "./gws")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tt := range []struct{ peer, mode string }{
		{"gorilla", "no-context-takeover"},
		{"coder", "no-context-takeover"}, {"coder", "context-takeover"},
		{"gws", "no-context-takeover"}, {"gws", "context-takeover"},
	} {
		t.Run(tt.peer+"/"+tt.mode, func(t *testing.T) {
			addr := startArgs(t, filepath.Join(dir, tt.peer), "--compression="+tt.mode)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", map[string]string{"client_no_context_takeover": ""})}}
			c, br, hs, err := d.Dial(ctx, "ws://"+addr+"/echo")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if len(hs.Extensions) == 0 || string(hs.Extensions[0].Name) != "permessage-deflate" {
				t.Fatalf("negotiated %v, want permessage-deflate", hs.Extensions)
			}
			r := io.Reader(c)
			if br != nil {
				r = io.MultiReader(br, c)
			}
			msg := bytes.Repeat([]byte(`{"event":"tick","user":"ada"}`), 100)
			var z bytes.Buffer
			fw, _ := flate.NewWriter(&z, 1)
			fw.Write(msg)
			fw.Flush()
			payload := z.Bytes()[:z.Len()-4]
			frame := ws.NewFrame(ws.OpText, true, payload)
			frame.Header.Rsv = ws.Rsv(true, false, false)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := ws.WriteFrame(c, ws.MaskFrameInPlace(frame)); err != nil {
				t.Fatal(err)
			}
			f, err := ws.ReadFrame(r)
			if err != nil {
				t.Fatal(err)
			}
			if !f.Header.Rsv1() {
				t.Fatalf("echo of %d bytes came back uncompressed", len(msg))
			}
			got, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(f.Payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))))
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("inflated echo: %v, equal %v", err, bytes.Equal(got, msg))
			}
		})
	}
}

// checkBroadcast: a message from one of three connections reaches all
// three.
func checkBroadcast(t *testing.T, url string) {
	var conns []net.Conn
	for range 3 {
		c, _, _, err := ws.Dial(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond) // the last one is registered
	if err := wsutil.WriteClientText(conns[0], []byte("to all")); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		p, err := wsutil.ReadServerText(c)
		if err != nil || string(p) != "to all" {
			t.Fatalf("connection %d: %q %v", i, p, err)
		}
	}
}
