package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/internal/redistest"
)

// member is a gorilla client in a room of a `wsmatrix serve`, reading in
// the background.
type member struct {
	t  *testing.T
	c  *websocket.Conn
	in chan string
}

func joinRoom(t *testing.T, addr, room string) *member {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/chat/"+room, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{t: t, c: c, in: make(chan string, 10000)}
	go func() {
		defer close(m.in)
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			m.in <- string(p)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return m
}

func (m *member) say(s string) {
	m.t.Helper()
	if err := m.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		m.t.Fatal(err)
	}
}

func (m *member) next() string {
	m.t.Helper()
	select {
	case s, ok := <-m.in:
		if !ok {
			m.t.Fatal("connection ended")
		}
		return s
	case <-time.After(10 * time.Second):
		m.t.Fatal("nothing for 10 s")
	}
	return ""
}

func (m *member) none() {
	m.t.Helper()
	select {
	case s := <-m.in:
		m.t.Fatalf("unexpected %q", s)
	case <-time.After(200 * time.Millisecond):
	}
}

// waitMembers waits until the servers' hubs are subscribed and a message
// sent by probe reaches every member (joining is asynchronous across
// processes only in that a subscription may still be settling).
func settle(t *testing.T, probe *member, all []*member) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		tag := fmt.Sprintf("probe-%d", attempt)
		probe.say(tag)
		ok := true
		for _, m := range all {
			got := ""
			select {
			case got = <-m.in:
			case <-time.After(500 * time.Millisecond):
			}
			if got != tag {
				ok = false
			}
		}
		if ok {
			return
		}
		if attempt == 20 {
			t.Fatal("the room never spanned the processes")
		}
		for _, m := range all { // drop what came late
			for len(m.in) > 0 {
				<-m.in
			}
		}
	}
}

// TestChatAcrossProcesses: three `wsmatrix serve --redis` processes, one
// per runtime, share /chat/{room} through a real redis-server: every
// message reaches every member, sender included, in one order for all;
// `wsmatrix emit` reaches them from a process with no server; with Redis
// killed each process goes on serving its own members, and once Redis is
// back the room spans the processes again.
func TestChatAcrossProcesses(t *testing.T) {
	rs := redistest.Start(t)
	var servers []*server
	for i, rt := range runtimes {
		args := []string{"--runtime=" + rt, "--redis=" + rs.URL()}
		if i == 0 {
			args = append(args, "--admin-addr=127.0.0.1:0")
		}
		servers = append(servers, startServe(t, args...))
	}
	var ms []*member
	for _, s := range servers {
		ms = append(ms, joinRoom(t, s.addr, "r"), joinRoom(t, s.addr, "r"))
	}
	other := joinRoom(t, servers[1].addr, "elsewhere")
	settle(t, ms[0], ms)

	// Every member says 20 lines at once; all see the same 120 lines in
	// the same order, each sender's in the order sent.
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			for j := range 20 {
				m.c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "%d-%d", i, j))
			}
		})
	}
	wg.Wait()
	var first []string
	for i, m := range ms {
		var got []string
		for range 120 {
			got = append(got, m.next())
		}
		if i == 0 {
			first = got
		} else if !slices.Equal(got, first) {
			t.Fatalf("member %d (%s) saw another order", i, runtimes[i/2])
		}
	}
	next := map[string]int{}
	for _, line := range first {
		var i, j int
		fmt.Sscanf(line, "%d-%d", &i, &j)
		if k := fmt.Sprint(i); j != next[k] {
			t.Fatalf("sender %d: %d before %d", i, j, next[k])
		} else {
			next[k]++
		}
	}
	other.none()

	// The external emitter.
	code, out := runBinary(t, binary, nil, "emit", "--redis="+rs.URL(), "--room=r,elsewhere", "from cron")
	if code != 0 {
		t.Fatalf("emit: %d %s", code, out)
	}
	for _, m := range append(ms, other) {
		if got := m.next(); got != "from cron" {
			t.Fatalf("emit: got %q", got)
		}
	}

	// Redis dies: each process serves its own members, and says so.
	rs.Stop()
	time.Sleep(300 * time.Millisecond)
	ms[4].say("gnet alone")
	if ms[4].next() != "gnet alone" || ms[5].next() != "gnet alone" {
		t.Fatal("local delivery stopped with Redis")
	}
	ms[0].none()
	if code, out := runBinary(t, binary, nil, "emit", "--redis="+rs.URL(), "--timeout=1s", "--room=r", "lost"); code != 1 {
		t.Fatalf("emit without Redis: %d %s", code, out)
	}
	rs.Restart()
	settle(t, ms[1], ms)
	waitLog(t, servers[2], "hub: backplane subscription restored")

	resp, err := http.Get("http://" + adminAddr(t, servers[0]) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wsmatrix_hub_members{runtime="stdhttp"} 2`,
		`wsmatrix_hub_rooms{runtime="stdhttp"} 1`,
		`wsmatrix_hub_backplane_up{runtime="stdhttp"} 1`,
		`wsmatrix_hub_backplane_reconnects_total{runtime="stdhttp"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !regexp.MustCompile(`wsmatrix_hub_delivered_total\{runtime="stdhttp"\} [1-9]`).Match(body) {
		t.Error("no deliveries counted")
	}
}

func waitLog(t *testing.T, s *server, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.logText(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs:\n%s", text, s.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var adminListening = regexp.MustCompile(`msg="admin listening" addr=(\S+)`)

func adminAddr(t *testing.T, s *server) string {
	t.Helper()
	m := adminListening.FindStringSubmatch(s.logText())
	if m == nil {
		t.Fatalf("no admin address in the logs:\n%s", s.logText())
	}
	return m[1]
}

// TestBrowserChatAcrossProcesses: two Chromium pages, each on the demo
// page of its own server process (stdhttp and gnet), chat in one room
// through Redis.
func TestBrowserChatAcrossProcesses(t *testing.T) {
	script, err := filepath.Abs("../../interop/browser-chat.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("../../interop/node_modules/playwright-core"); err != nil {
		t.Fatalf("playwright-core is not installed: run `npm ci --prefix interop` (.ci/run does): %v", err)
	}
	rs := redistest.Start(t)
	a := startServe(t, "--runtime=stdhttp", "--redis="+rs.URL())
	b := startServe(t, "--runtime=gnet", "--redis="+rs.URL())
	dir := t.TempDir()
	out, err := exec.Command("node", script, "http://"+a.addr+"/", "http://"+b.addr+"/", "lobby",
		filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")).CombinedOutput()
	if err != nil {
		t.Fatalf("browser: %v\n%s\nlogs A:\n%s\nlogs B:\n%s", err, out, a.logText(), b.logText())
	}
	t.Log(strings.TrimSpace(string(out)))
}

// TestRedisPasswordIsNotLogged: serve's start-up line names the Redis URL
// with its password masked; it logged the URL whole.
func TestRedisPasswordIsNotLogged(t *testing.T) {
	s := startServe(t, "--runtime=stdhttp", "--redis=redis://alice:s3cr3tpass@127.0.0.1:1")
	logs := s.logText()
	if strings.Contains(logs, "s3cr3tpass") {
		t.Fatalf("the password is in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "redis://alice:xxxxx@127.0.0.1:1") {
		t.Fatalf("the log does not name the Redis URL, masked:\n%s", logs)
	}
}
