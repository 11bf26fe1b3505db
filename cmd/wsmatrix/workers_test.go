package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/internal/redistest"
)

var adminOfWorker = regexp.MustCompile(`msg="admin listening" worker=(\d+) addr=(\S+)`)

// TestWorkers: serve --workers=3 starts three processes on one address
// (SO_REUSEPORT) that share the connections; a worker killed is restarted
// and logged; SIGTERM to the parent closes every connection with 1001 and
// exits 0.
func TestWorkers(t *testing.T) {
	for _, rt := range []string{"stdhttp", "gnet"} {
		t.Run(rt, func(t *testing.T) {
			s := startCmd(t, exec.Command(binary, "serve", "--workers=3", "--runtime="+rt, "--addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0"))
			admins := map[string]string{}
			for deadline := time.Now().Add(10 * time.Second); len(admins) < 3; time.Sleep(20 * time.Millisecond) {
				for _, m := range adminOfWorker.FindAllStringSubmatch(s.logText(), -1) {
					admins[m[1]] = m[2]
				}
				if time.Now().After(deadline) {
					t.Fatalf("workers: %v\n%s", admins, s.logText())
				}
			}
			var conns []*websocket.Conn
			for range 60 {
				c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo-event", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
			}
			total := 0
			for w, a := range admins {
				n := openConns(t, a)
				if n == 0 {
					t.Errorf("worker %s holds no connection", w)
				}
				total += n
			}
			if total != 60 {
				t.Fatalf("workers hold %d connections, want 60", total)
			}
			// A worker that dies is restarted.
			out, _ := exec.Command("pgrep", "-P", strconv.Itoa(s.cmd.Process.Pid)).Output()
			children := strings.Fields(string(out))
			if len(children) != 3 {
				t.Fatalf("children: %q", out)
			}
			victim, _ := strconv.Atoi(children[0])
			if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
				t.Fatalf("kill %d: %v", victim, err)
			}
			waitLog(t, s, "worker exited: restarting")
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				out, _ := exec.Command("pgrep", "-P", strconv.Itoa(s.cmd.Process.Pid)).Output()
				if len(strings.Fields(string(out))) == 3 && !strings.Contains(string(out), children[0]) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not restarted: %q", out)
				}
			}
			// SIGTERM: every connection still open (those of the killed
			// worker are gone) gets 1001, and the parent exits 0.
			s.cmd.Process.Signal(syscall.SIGTERM)
			got1001 := 0
			for _, c := range conns {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, _, err := c.ReadMessage()
				if websocket.IsCloseError(err, websocket.CloseGoingAway) {
					got1001++
				}
			}
			if got1001 < 20 {
				t.Fatalf("only %d connections closed with 1001", got1001)
			}
			select {
			case err := <-s.done:
				s.done <- err // for the cleanup
				if err != nil {
					t.Fatalf("parent: %v\n%s", err, s.logText())
				}
			case <-time.After(15 * time.Second):
				t.Fatal("parent still running")
			}
			t.Logf("60 connections over 3 workers; %d closed with 1001 after one worker was killed", got1001)
		})
	}
}

func openConns(t *testing.T, admin string) int {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`wsmatrix_connections_open\{[^}]*\} (\d+)`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestReach: `wsmatrix reach` from two client processes against two
// workers joined by Redis: one emit reaches every connection.
func TestReach(t *testing.T) {
	rs := redistest.Start(t)
	s := startCmd(t, exec.Command(binary, "serve", "--workers=2", "--runtime=gnet", "--addr=127.0.0.1:0", "--redis="+rs.URL()))
	code, out := runBinary(t, binary, nil, "reach", "--url=ws://"+s.addr+"/chat/all", "--pid="+strconv.Itoa(s.cmd.Process.Pid),
		"--redis="+rs.URL(), "--conns=400", "--clients=2", "--timeout=20s")
	if code != 0 || !strings.Contains(out, "| 400 | 2 |") || !strings.Contains(out, "| 400 | 1.0000 |") {
		t.Fatalf("reach: %d\n%s", code, out)
	}
	t.Log(out)
}

// TestWorkersThatCannotStart: a worker that exits before it serves (its
// address taken, a bad flag its runtime refuses) is not restarted forever:
// the parent stops every worker and exits 1, as one process would; an
// admin port range that takes in the serve port is refused at once (2).
func TestWorkersThatCannotStart(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cmd := exec.Command(binary, "serve", "--workers=2", "--addr="+taken.Addr().String())
	var log strings.Builder
	cmd.Stderr = &log
	start := time.Now()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want 1\n%s", err, log.String())
		}
		if strings.Contains(log.String(), "restarting") || !strings.Contains(log.String(), "worker failed to start") {
			t.Fatalf("log:\n%s", log.String())
		}
		t.Logf("exited 1 after %v", time.Since(start))
	case <-time.After(10 * time.Second):
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		t.Fatalf("still running after 10 s with its address taken:\n%s", log.String())
	}

	_, port, _ := net.SplitHostPort(taken.Addr().String())
	p, _ := strconv.Atoi(port)
	out, err := exec.Command(binary, "serve", "--workers=2", "--addr=127.0.0.1:"+strconv.Itoa(p+1), "--admin-addr=127.0.0.1:"+port).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "admin") {
		t.Fatalf("admin ports over the serve port: %v\n%s", err, out)
	}
}

// TestWorkerKilledWhileStartingIsRestarted: a worker killed by a signal
// before it serves (a replacement the OOM killer takes) is restarted, as
// any worker that dies; only one that exits by itself before serving
// stops them all. Killing a replacement right after it was started took
// the whole server down.
func TestWorkerKilledWhileStartingIsRestarted(t *testing.T) {
	s := startServe(t, "--runtime=stdhttp", "--workers=2")
	parent := s.cmd.Process.Pid
	children := func() map[int]bool { // from /proc, at once: a replacement serves within milliseconds
		m := map[int]bool{}
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(parent) + "/task/*/children")
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, f := range strings.Fields(string(b)) {
				pid, _ := strconv.Atoi(f)
				m[pid] = true
			}
		}
		return m
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logText(), "served=false") && !strings.Contains(s.logText(), "worker failed to start") {
		if time.Now().After(deadline) {
			t.Fatalf("no worker was killed before it served in 20 s of tries:\n%s", s.logText())
		}
		before := children()
		for pid := range before {
			syscall.Kill(pid, syscall.SIGKILL)
			break
		}
		for time.Now().Before(deadline) { // its replacement: killed as soon as it is seen
			now := children()
			killed := false
			for pid := range now {
				if !before[pid] {
					syscall.Kill(pid, syscall.SIGKILL)
					killed = true
				}
			}
			if killed {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(s.logText(), "worker failed to start") {
		t.Fatalf("a worker killed while starting stopped them all:\n%s", s.logText())
	}
	// Still serving: the workers come back (after their restart backoff).
	for back := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(back) {
			t.Fatalf("not serving 10 s after the kills: %v\n%s", err, s.logText())
		}
	}
}
