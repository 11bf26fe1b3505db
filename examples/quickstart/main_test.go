package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestREADME: the README shows this program as it is, and it builds, runs
// and serves on every runtime, and stops on SIGTERM with 1001 and exit 0.
func TestREADME(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	body := src[bytes.Index(src, []byte("package main")):]
	if !bytes.Contains(readme, append([]byte("```go\n"), body...)) {
		t.Fatal("README.md does not show examples/quickstart/main.go (from `package main` on) in a ```go block: copy it over")
	}

	bin := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, rt := range []string{"stdhttp", "fasthttp", "gnet"} {
		t.Run(rt, func(t *testing.T) {
			addr := freeAddr(t)
			var logs bytes.Buffer
			cmd := exec.Command(bin, "--addr="+addr, "--runtime="+rt)
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer cmd.Process.Kill()

			var c *websocket.Conn
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				c, _, err = websocket.DefaultDialer.Dial("ws://"+addr+"/chat/lobby", nil)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("dial: %v; logs:\n%s", err, logs.String())
				}
			}
			defer c.Close()
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, p, err := c.ReadMessage()
			if err != nil || string(p) != "lobby: hi" {
				t.Fatalf("got %q %v, want %q", p, err, "lobby: hi")
			}

			cmd.Process.Signal(syscall.SIGTERM)
			_, _, err = c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				t.Fatalf("after SIGTERM: %v, want close 1001", err)
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("exit: %v; logs:\n%s", err, logs.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15 s after SIGTERM; logs:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "serving ws://"+addr) {
				t.Fatalf("logs: %s", logs.String())
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
