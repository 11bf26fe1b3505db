package runtimetest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// client is a raw WebSocket client over TCP that can send anything,
// including frames a correct client never would. It encodes with
// github.com/gobwas/ws, not with the engine under test.
type client struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// rawDial connects and sends the request head; it returns the client and
// the server's response.
func rawDial(t testing.TB, addr, head string) (*client, *http.Response) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, conn: nc, br: bufio.NewReader(nc)}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, head); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	c.resp = resp
	return c, resp
}

func newKey() string {
	var k [16]byte
	rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

// upgradeHead builds an upgrade request for path with extra header lines.
func upgradeHead(addr, path string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, addr)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", newKey())
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// dial opens a WebSocket connection to path and fails the test unless the
// server answers 101.
func dial(t testing.TB, addr, path string, extra ...string) *client {
	t.Helper()
	c, resp := rawDial(t, addr, upgradeHead(addr, path, extra...))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade %s: status %d, want 101: %s", path, resp.StatusCode, body)
	}
	c.conn.SetDeadline(time.Time{})
	return c
}

// encode returns a masked client frame.
func encode(fin bool, rsv byte, op ws.OpCode, payload []byte) []byte {
	var buf bytes.Buffer
	mask := ws.NewMask()
	h := ws.Header{Fin: fin, Rsv: rsv, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: mask}
	ws.WriteHeader(&buf, h)
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	buf.Write(p)
	return buf.Bytes()
}

func (c *client) write(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) frame(fin bool, op ws.OpCode, payload []byte) {
	c.t.Helper()
	c.write(encode(fin, 0, op, payload))
}

func (c *client) text(s string) { c.t.Helper(); c.frame(true, ws.OpText, []byte(s)) }
func (c *client) ping(p []byte) { c.t.Helper(); c.frame(true, ws.OpPing, p) }
func (c *client) closeFrame(code api.StatusCode, reason string) {
	c.t.Helper()
	c.frame(true, ws.OpClose, closeBody(code, reason))
}

func closeBody(code api.StatusCode, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(code))
	return append(b, reason...)
}

type frame struct {
	h       ws.Header
	payload []byte
}

// read returns the next frame from the server, failing on a masked frame
// (servers must not mask).
func (c *client) read(timeout time.Duration) (frame, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	h, err := ws.ReadHeader(c.br)
	if err != nil {
		return frame{}, err
	}
	if h.Masked {
		return frame{}, fmt.Errorf("server sent a masked frame")
	}
	if h.Length > 64<<20 {
		return frame{}, fmt.Errorf("server frame of %d bytes", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return frame{}, err
	}
	return frame{h, p}, nil
}

// next returns the next data or close frame, skipping pings and pongs.
func (c *client) next() frame {
	c.t.Helper()
	for {
		f, err := c.read(10 * time.Second)
		if err != nil {
			c.t.Fatalf("read frame: %v", err)
		}
		if f.h.OpCode == ws.OpPing || f.h.OpCode == ws.OpPong {
			continue
		}
		return f
	}
}

// expectMessage reads the next message and compares it.
func (c *client) expectMessage(op ws.OpCode, want []byte) {
	c.t.Helper()
	f := c.next()
	if f.h.OpCode != op || !f.h.Fin || !bytes.Equal(f.payload, want) {
		c.t.Fatalf("got frame op=%v fin=%v len=%d %q, want op=%v len=%d %q",
			f.h.OpCode, f.h.Fin, len(f.payload), trunc(f.payload), op, len(want), trunc(want))
	}
}

func trunc(p []byte) []byte {
	if len(p) > 160 {
		return p[:160]
	}
	return p
}

// expectClose reads frames until a close frame and checks its code, then
// checks that the server closes the TCP connection.
func (c *client) expectClose(code api.StatusCode) (reason string) {
	c.t.Helper()
	for {
		f, err := c.read(10 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for close %v: %v", code, err)
		}
		if f.h.OpCode != ws.OpClose {
			continue
		}
		got := api.StatusNoStatusReceived
		if len(f.payload) >= 2 {
			got = api.StatusCode(binary.BigEndian.Uint16(f.payload))
			reason = string(f.payload[2:])
		}
		if got != code {
			c.t.Fatalf("close code %v (%q), want %v", got, reason, code)
		}
		return reason
	}
}

// expectEOF checks that the server closes the TCP connection soon,
// answering the close handshake if it is still open.
func (c *client) expectEOF() {
	c.t.Helper()
	for {
		f, err := c.read(10 * time.Second)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatalf("server did not close the TCP connection: %v", err)
			}
			return
		}
		_ = f
	}
}

// closeHandshake answers the server's close and waits for EOF.
func (c *client) finishClose(code api.StatusCode) {
	c.t.Helper()
	c.expectClose(code)
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.conn.Write(encode(true, 0, ws.OpClose, closeBody(code, ""))) // the server may be gone already
	c.expectEOF()
}
