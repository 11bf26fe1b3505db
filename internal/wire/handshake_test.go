package wire

import (
	"errors"
	"net/http"
	"testing"
)

func TestAcceptKey(t *testing.T) { // RFC 6455 section 1.3
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatal(got)
	}
}

func TestReadRequest(t *testing.T) {
	head := "GET /chat/1?x=y HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: b, a\r\n\r\n"
	in := []byte(head + "\x81\x80")
	for i := 0; i < len(head); i++ {
		if r, n, err := ReadRequest(in[:i], 4096); r != nil || n != 0 || err != nil {
			t.Fatalf("prefix of %d bytes: %v %d %v", i, r, n, err)
		}
	}
	r, n, err := ReadRequest(in, 4096)
	if err != nil || n != len(head) {
		t.Fatalf("n %d err %v", n, err)
	}
	if r.URL.Path != "/chat/1" || r.URL.Query().Get("x") != "y" || r.Host != "example.com" {
		t.Fatalf("request %+v", r)
	}
	key, err := CheckRequest(r)
	if err != nil || key != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatalf("key %q err %v", key, err)
	}
	if got := string(AppendResponse(nil, key, "a", "")); got != "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: a\r\n\r\n" {
		t.Fatalf("response %q", got)
	}

	var he *HandshakeError
	if _, _, err := ReadRequest([]byte("GET / HTTP/1.1\r\nHost: x\r\nX: "+string(make([]byte, 300))), 256); !errors.As(err, &he) || he.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized head: %v", err)
	}
	if _, _, err := ReadRequest([]byte("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), 256); !errors.As(err, &he) || he.Status != 400 {
		t.Fatalf("request with a body: %v", err)
	}
	if _, _, err := ReadRequest([]byte("NOT HTTP\r\n\r\n"), 256); !errors.As(err, &he) || he.Status != 400 {
		t.Fatalf("garbage: %v", err)
	}
}
