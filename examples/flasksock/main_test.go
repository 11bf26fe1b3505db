package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestDemoOnEveryRuntime runs the program on each runtime: the page and the
// echo answer on one port, the page's origin is the socket's.
func TestDemoOnEveryRuntime(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "flasksock")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, rt := range []string{"stdhttp", "fasthttp", "gnet"} {
		t.Run(rt, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			var logs bytes.Buffer
			cmd := exec.Command(bin, "--addr="+addr, "--runtime="+rt)
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
			}()
			var resp *http.Response
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if resp, err = http.Get("http://" + addr + "/"); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET /: %v\n%s", err, logs.String())
				}
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(page), "new WebSocket(") {
				t.Fatalf("GET /: %d %q", resp.StatusCode, page)
			}
			// The browser's Origin is the page's: same host, so accepted.
			c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/echo", http.Header{"Origin": {"http://" + addr}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.WriteMessage(websocket.TextMessage, []byte("hello"))
			if _, p, err := c.ReadMessage(); err != nil || string(p) != "hello" {
				t.Fatalf("echo: %q %v", p, err)
			}
			c.Close()
			cmd.Process.Signal(syscall.SIGTERM) // Ctrl-C: a clean stop
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after SIGTERM: %v\n%s", err, logs.String())
			}
		})
	}
}
