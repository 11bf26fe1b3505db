package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuickstartInChromium runs Flask-SocketIO's quickstart, ported, on
// each runtime and loads its unchanged page in Chromium: the page's
// Socket.IO client connects (long-polling, then WebSocket), emits 'my
// event' and gets 'my response' with the same JSON.
func TestQuickstartInChromium(t *testing.T) {
	script, err := filepath.Abs("../../interop/browser-socketio.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("../../interop/node_modules/socket.io-client"); err != nil {
		t.Fatalf("socket.io-client is not installed: run `npm ci --prefix interop` (.ci/run does): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "socketio")
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
			// The server writes its log to a file the test reads when it fails.
			logFile, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logFile.Close()
			logs := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
			cmd := exec.Command(bin, "--addr="+addr, "--runtime="+rt)
			cmd.Stdout, cmd.Stderr = logFile, logFile
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
			}()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if resp, err := http.Get("http://" + addr + "/"); err == nil {
					resp.Body.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not serving: %s", logs())
				}
			}
			shot := filepath.Join(t.TempDir(), "quickstart.png")
			out, err := exec.Command("node", script, "http://"+addr+"/", shot).CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "ok") {
				t.Fatalf("browser: %v\n%s\nserver: %s", err, out, logs())
			}
			t.Log(strings.TrimSpace(string(out)))
			cmd.Process.Signal(syscall.SIGTERM) // Ctrl-C: a clean stop
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after SIGTERM: %v\n%s", err, logs())
			}
		})
	}
}
