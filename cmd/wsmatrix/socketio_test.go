package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/internal/redistest"
)

func nodeScript(t *testing.T, name string) string {
	t.Helper()
	if _, err := os.Stat("../../interop/node_modules/socket.io-client"); err != nil {
		t.Fatalf("socket.io-client is not installed: run `npm ci --prefix interop` (.ci/run does): %v", err)
	}
	p, err := filepath.Abs("../../interop/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSocketIOClients: the official clients — socket.io-client 4 in
// Node.js (default transports, which start on long-polling and upgrade,
// and WebSocket only) and Debian's python3-socketio (polling, websocket)
// — run serve's Socket.IO contract on every runtime: echo with JSON and
// binary arguments acknowledged, join, say → said.
func TestSocketIOClients(t *testing.T) {
	node := nodeScript(t, "socketio-client.mjs")
	py, _ := filepath.Abs("../../interop/socketio_client.py")
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := startServe(t, "--runtime="+rt)
			url := "http://" + s.addr
			for _, c := range [][]string{
				{"node", node, url, "default"},
				{"node", node, url, "websocket"},
				{"/usr/bin/python3", py, url, "polling"},
				{"/usr/bin/python3", py, url, "websocket"},
			} {
				out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
				if err != nil || !strings.HasPrefix(string(out), "ok") {
					t.Fatalf("%s %s: %v\n%s\nserver:\n%s", filepath.Base(c[1]), c[3], err, out, s.logText())
				}
				t.Logf("%s %s: %s", filepath.Base(c[1]), c[3], strings.TrimSpace(string(out)))
			}
		})
	}
}

// TestSocketIOAcrossProcesses: two serve processes (stdhttp, gnet) joined
// by Redis: a say on one reaches a Socket.IO client on the other; wsmatrix
// emit --event reaches Socket.IO clients.
func TestSocketIOAcrossProcesses(t *testing.T) {
	node := nodeScript(t, "socketio-client.mjs")
	rs := redistest.Start(t)
	a := startServe(t, "--runtime=stdhttp", "--redis="+rs.URL())
	b := startServe(t, "--runtime=gnet", "--redis="+rs.URL())
	for _, mode := range []string{"default", "websocket"} {
		out, err := exec.Command("node", node, "http://"+a.addr, mode, "x-"+mode, "http://"+b.addr).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		t.Log(strings.TrimSpace(string(out)))
	}
	listener := exec.Command("node", nodeScript(t, "socketio-listen.mjs"), "http://"+b.addr, "news", "said")
	stdout, err := listener.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	defer listener.Process.Kill()
	buf := make([]byte, 4096)
	n, _ := stdout.Read(buf) // "joined"
	if !strings.Contains(string(buf[:n]), "joined") {
		t.Fatalf("listener: %q", buf[:n])
	}
	if code, out := runBinary(t, binary, nil, "emit", "--redis="+rs.URL(), "--event=said", "--room=news", "from the shell"); code != 0 {
		t.Fatalf("emit: %d %s", code, out)
	}
	n, _ = stdout.Read(buf)
	if got := strings.TrimSpace(string(buf[:n])); got != `said: "from the shell"` {
		t.Fatalf("listener got %q", got)
	}
	listener.Wait()
}

// TestSocketIOReconnect: socket.io-client reconnects by itself after the
// server restarts on the same address.
func TestSocketIOReconnect(t *testing.T) {
	script := nodeScript(t, "socketio-reconnect.mjs")
	s := startServe(t, "--runtime=gnet")
	client := exec.Command("node", script, "http://"+s.addr)
	var out lockedBuffer
	client.Stdout, client.Stderr = &out, &out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer client.Process.Kill()
	waitFor := func(text string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !strings.Contains(out.String(), text); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q: %s", text, out.String())
			}
		}
	}
	waitFor("connected 1 hello 1")
	s.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, s, "msg=stopped")
	waitFor("disconnected: transport close")
	startServe(t, "--runtime=stdhttp", "--addr="+s.addr) // another runtime, same address
	if err := client.Wait(); err != nil {
		t.Fatalf("client: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "connected 2 hello 2") {
		t.Fatalf("no reconnection: %s", out.String())
	}
	t.Log(strings.ReplaceAll(out.String(), "\n", "; "))
}

// TestMaxConnectionsBoundsSocketIOSessions: --max-connections bounds
// Socket.IO sessions too: a long-polling session holds its request as a
// WebSocket connection does (40,000 handshakes of 6 KB heads held 640 MB
// with nothing bounding them).
func TestMaxConnectionsBoundsSocketIOSessions(t *testing.T) {
	s := startServe(t, "--runtime=stdhttp", "--max-connections=2")
	codes := []int{}
	for range 3 {
		resp, err := http.Get("http://" + s.addr + "/socket.io/?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusServiceUnavailable {
		t.Fatalf("three handshakes under --max-connections=2: %v, want 200 200 503", codes)
	}
}
