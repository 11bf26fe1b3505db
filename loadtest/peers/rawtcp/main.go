// Command rawtcp is the ceiling of the echo comparison: it answers the
// upgrade with a fixed 101 and then, per frame, only unmasks the payload and
// writes it back, with one goroutine and one 64 KiB buffer per connection
// and no checks at all. No real server can do less work per message.
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	peers.Listening(l.Addr().String())
	go func() { peers.WaitSignal(); l.Close() }()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(h[:]))
	buf := make([]byte, 64<<10)
	for {
		hdr, err := ws.ReadHeader(br)
		if err != nil || hdr.Length > int64(len(buf)-14) {
			return
		}
		p := buf[14 : 14+hdr.Length]
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		if hdr.OpCode == ws.OpClose {
			return
		}
		ws.Cipher(p, hdr.Mask, 0)
		// Header in front of the payload, one write.
		n := 2
		switch {
		case hdr.Length < 126:
			buf[12], buf[13] = 0x80|byte(hdr.OpCode), byte(hdr.Length)
		default:
			buf[10], buf[11] = 0x80|byte(hdr.OpCode), 126
			binary.BigEndian.PutUint16(buf[12:14], uint16(hdr.Length))
			n = 4
		}
		if _, err := c.Write(buf[14-n : 14+hdr.Length]); err != nil {
			return
		}
	}
}
