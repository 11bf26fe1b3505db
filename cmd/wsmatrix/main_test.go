package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var binary string

func TestMain(m *testing.M) {
	// `wsmatrix bench` starts servers as `os.Executable() serve ...`: run
	// in-process by a test, that is this test binary, which then serves.
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "wsmatrix-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "wsmatrix")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `wsmatrix serve`.
type server struct {
	cmd    *exec.Cmd
	addr   string
	logs   *bytes.Buffer
	logsMu sync.Mutex
	done   chan error
}

// logText is what the server logged so far.
// admin waits for the server's admin address in its logs.
func (s *server) admin(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := adminListening.FindStringSubmatch(s.logText()); m != nil {
			return m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no admin address in the logs:\n%s", s.logText())
		}
	}
}

func (s *server) logText() string {
	s.logsMu.Lock()
	defer s.logsMu.Unlock()
	return s.logs.String()
}

var listening = regexp.MustCompile(`msg=listening (?:worker=\d+ )?runtime=(\S+) addr=(\S+)`)

func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	return startCmd(t, exec.Command(binary, append([]string{"serve", "--addr=127.0.0.1:0"}, args...)...))
}

func startCmd(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logsMu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.logsMu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select { // the first one; workers each log theirs
				case addr <- m[2]:
				default:
				}
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	select {
	case s.addr = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not log its address: %s", s.logs)
	}
	return s
}

var runtimes = []string{"stdhttp", "fasthttp", "gnet"}

func TestServeInteropGorilla(t *testing.T) {
	for _, rt := range runtimes {
		for _, path := range []string{"/echo", "/echo-event"} {
			t.Run(rt+path, func(t *testing.T) {
				s := startServe(t, "--runtime="+rt)
				interop(t, "ws://"+s.addr+path)
			})
		}
	}
}

// interop exchanges text, binary, a ping and a close code with gorilla's
// client.
func interop(t *testing.T, url string) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))

	for _, m := range []struct {
		typ  int
		data []byte
	}{
		{websocket.TextMessage, []byte("héllo wsmatrix")},
		{websocket.BinaryMessage, []byte{0, 1, 2, 255}},
		{websocket.BinaryMessage, bytes.Repeat([]byte{7}, 200000)},
		{websocket.TextMessage, []byte("")},
	} {
		if err := c.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(p, m.data) {
			t.Fatalf("echo of %d bytes type %d: got type %d, %d bytes, %v", len(m.data), m.typ, typ, len(p), err)
		}
	}

	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("ping-1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.TextMessage, []byte("after ping"))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "after ping" { // the pong handler runs inside ReadMessage
		t.Fatalf("%q %v", p, err)
	}
	select {
	case p := <-pong:
		if p != "ping-1" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}

	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "client done"), time.Now().Add(time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("close: %v, want the server to echo 4001", err)
	}
}

func TestServeSIGTERMClosesWith1001(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) { sigterm(t, rt) })
	}
}

func sigterm(t *testing.T, rt string) {
	s := startServe(t, "--runtime="+rt)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("got %v, want close 1001", err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.logs)
		}
		s.done <- nil
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"serve", "--help"}, 0, "-read-limit"},
		{[]string{"serve", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"serve", "--runtime=nope"}, 2, `unknown runtime "nope"`},
		{[]string{"serve", "--read-limit=-5"}, 2, "ReadLimit"},
		{[]string{"serve", "--log-level=loud"}, 2, "--log-level"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"help", "serve"}, 0, "Usage: wsmatrix serve"},
		{[]string{"serve", "--pong-timeout=0"}, 2, "--ping-interval=0"},
		{[]string{"serve", "--close-timeout=0"}, 2, "--close-timeout 0"},
		{[]string{"serve", "--origins=["}, 2, "syntax error in pattern"},
		{[]string{"serve", "--addr=notanaddr"}, 2, "missing port"},
		{[]string{"serve", "--workers=2", "--send-queue-full=maybe"}, 2, "--send-queue-full"},
		{[]string{"emit", "--redis=redis://127.0.0.1:1", "--room=a", "--timeout=0", "x"}, 2, "--timeout"},
		{[]string{"emit", "--redis=redis://127.0.0.1:1", "--room=a", "--namespace=/x", "x"}, 2, "give --event too"},
		{[]string{"emit", "--redis=notaurl", "--room=a", "x"}, 2, "want redis://"},
		{[]string{"emit", "--redis=redis://127.0.0.1:1", "--room=a", "caf\xe9"}, 2, "not valid UTF-8"},
		{[]string{"emit", "--redis=redis://127.0.0.1:1", "--room=,", "x"}, 2, "name none"},
		{[]string{"emit", "--redis=redis://127.0.0.1:1", "--room=a", "--event=e", "--namespace=admin", "x"}, 2, "starts with /"},
		{[]string{"emit", "--redis=redis://127.0.0.1:1", "--room=a", "--event=e", "--namespace=/a,b", "x"}, 2, "no comma"},
		{[]string{}, 2, "Usage"},
		{[]string{"runtimes"}, 0, "stdhttp (default)"},
		{[]string{"runtimes"}, 0, "gnet"},
		{[]string{"runtimes"}, 0, "fasthttp"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(out.String(), tt.out) {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d and %q", code, out.String(), tt.code, tt.out)
			}
		})
	}
}

// TestServeStopsCleanlyPastItsGrace: a stop that cuts the connections
// still open when --shutdown-timeout runs out did what it was told: exit
// 0 with a warning, not 1 (a runtime error). With nothing open, a zero
// grace stops at once, also with 0.
func TestServeStopsCleanlyPastItsGrace(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			for _, silent := range []bool{false, true} {
				grace := "--shutdown-timeout=0"
				if silent {
					grace = "--shutdown-timeout=300ms"
				}
				s := startServe(t, "--runtime="+rt, grace)
				if silent { // a peer that never answers the close frame
					c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
				}
				s.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case err := <-s.done:
					s.done <- err
					if err != nil {
						t.Fatalf("%s, silent peer %v: exit %v\n%s", grace, silent, err, s.logText())
					}
					if silent && !strings.Contains(s.logText(), "cut") {
						t.Fatalf("no warning of the connection cut:\n%s", s.logText())
					}
				case <-time.After(15 * time.Second):
					t.Fatalf("%s, silent peer %v: server did not exit after SIGTERM:\n%s", grace, silent, s.logText())
				}
			}
		})
	}
}

// TestBenchRefusesAPidThatIsGone: --pid names the server bench measures;
// one that does not exist is refused before the run (it was found only
// after it).
func TestBenchRefusesAPidThatIsGone(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "bench", "--scenario=idle", "--conns=1", "--url=ws://127.0.0.1:1/echo", "--pid="+strconv.Itoa(gone.Process.Pid)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no such process") || strings.Contains(string(out), "| target") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestOnlyDeadline: a stop is clean when the grace period's deadline is
// all that went wrong, not when a runtime's part failed beside it.
func TestOnlyDeadline(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{errors.Join(context.DeadlineExceeded, context.DeadlineExceeded), true},
		{errors.Join(context.DeadlineExceeded, errors.New("wsmatrix: gnet: the engine did not stop")), false},
		{errors.New("listener broke"), false},
	} {
		if got := onlyDeadline(tt.err); got != tt.want {
			t.Errorf("onlyDeadline(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
